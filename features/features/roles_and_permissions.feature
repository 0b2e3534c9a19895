Feature: The roles and permissions grid
  Creating and revoking keys is owner and administrator only. By default, the Attorney and Staff
  roles have no access to API keys. A firm owner can grant the API keys permission to another
  role from the Roles and permissions grid. If your role does not include it, the API keys page
  does not appear for you.

  Background:
    Given a firm "Acme Law" whose owner is Olivia
    And Adam has joined Olivia's firm as an administrator
    And Alice has joined Olivia's firm as an attorney
    And Sam has joined Olivia's firm as staff

  Scenario: The default grid
    Then the roles are listed in the order owner, administrator, attorney, staff
    And the attorney role does not include "api_keys"
    And the attorney role does not include "audit_log"
    And the attorney role does not include "members"
    And the attorney role includes "contacts:read", "contacts:write", "matters:read", "matters:write", "leads:read", "leads:write", "practice_areas:read", "practice_areas:write", "matter_types:read", "matter_types:write"
    And the staff role does not include "api_keys"
    And the staff role includes "contacts:read", "contacts:write", "leads:read", "leads:write", "matters:read", "practice_areas:read", "matter_types:read"
    And the staff role does not include "matters:write"
    And the administrator role includes "api_keys"

  Scenario: Only the owner and administrators can open the API keys page by default
    Then Olivia can open the API keys page
    And Adam can open the API keys page
    But Alice cannot open the API keys page
    And Sam cannot open the API keys page

  Scenario: The owner grants the API keys permission to the Attorney role
    When Olivia grants the "api_keys" permission to the attorney role
    Then the attorney role includes "api_keys"
    And Alice can open the API keys page
    When Alice creates an API key "Docket sync" for "matters:read"
    Then the key is created
    And Alice sees the API key "Docket sync" as Active
    But Sam still cannot open the API keys page

  Scenario: An administrator cannot change the grid
    When Adam tries to grant the "api_keys" permission to the attorney role
    Then it is refused with 403 permission_denied
    And the attorney role does not include "api_keys"
    And Alice cannot open the API keys page

  Scenario: The owner role cannot be changed
    When Olivia tries to change the permissions of the owner role
    Then it is refused with 409 owner_role_fixed

  Scenario: Taking the permission away closes the page again
    Given Olivia has granted the "api_keys" permission to the attorney role
    When Olivia takes the "api_keys" permission away from the attorney role
    Then Alice cannot open the API keys page
