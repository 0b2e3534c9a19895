Feature: Keys at work
  An API key lets one of your systems act on the API on your firm's behalf. Status is one of
  Active (working), Revoked (turned off by someone), or Expired (past its expiry date). Only
  Active keys work. Expiry (and revocation) only stops the key from working: records it already
  created stay exactly where they are. Last used shows when a request last came in using the
  key, or a dash if it has never been used.

  Background:
    Given a firm "Acme Law" whose owner is Olivia

  Scenario: A new key works at once
    When Olivia creates an API key "Intake sync" for "contacts:read, contacts:write"
    And "Intake sync" adds the contact "Ada Lovelace"
    Then it works
    When "Intake sync" lists the contacts
    Then it works
    And Olivia still finds the contact "Ada Lovelace" made by "Intake sync"

  Scenario: A revoked key stops working immediately: the very next request is rejected
    Given Olivia has created an API key "Intake sync" for "contacts:read"
    And "Intake sync" lists the contacts
    When Olivia revokes the API key "Intake sync"
    And "Intake sync" tries to list the contacts
    Then it is refused with 401 api_key_revoked
    And the refusal asks for a valid token

  Scenario: Revoking one key leaves the firm's other keys working
    Given Olivia has created an API key "Intake sync" for "contacts:read"
    And Olivia has created an API key "Matter mirror" for "matters:read"
    When Olivia revokes the API key "Intake sync"
    And "Matter mirror" lists the matters
    Then it works

  Scenario: An expired key stops working
    Given Olivia has created an API key "Short lived" for "contacts:read" that expires in 3 seconds
    When "Short lived" lists the contacts
    Then it works
    When the expiry time of "Short lived" has passed
    And "Short lived" tries to list the contacts
    Then it is refused with 401 api_key_expired
    And the refusal asks for a valid token
    And Olivia sees the API key "Short lived" as Expired

  Scenario: Does an expired key delete my data? No: its records stay exactly where they are
    Given Olivia has created an API key "Migration script" for "contacts:write, leads:write" that expires in 3 seconds
    When "Migration script" adds the contact "Ada Lovelace"
    And "Migration script" adds the lead "Lee Jones"
    And the expiry time of "Migration script" has passed
    And "Migration script" tries to add the contact "Grace Hopper"
    Then it is refused with 401 api_key_expired
    And Olivia still finds the contact "Ada Lovelace" made by "Migration script"
    And Olivia still finds the lead "Lee Jones" made by "Migration script"

  Scenario: Revoking a key leaves the records it created where they are
    Given Olivia has created an API key "Intake sync" for "contacts:write, matters:write"
    When "Intake sync" adds the contact "Ada Lovelace"
    And "Intake sync" adds the matter "Lovelace estate"
    And Olivia revokes the API key "Intake sync"
    And "Intake sync" tries to add the contact "Grace Hopper"
    Then it is refused with 401 api_key_revoked
    And Olivia still finds the contact "Ada Lovelace" made by "Intake sync"
    And Olivia still finds the matter "Lovelace estate" made by "Intake sync"

  Scenario: Last used is a dash until a request comes in using the key
    Given Olivia has created an API key "Intake sync" for "contacts:read"
    And Olivia has created an API key "Matter mirror" for "matters:read"
    Then Olivia sees a row for "Intake sync" with:
      | Last used | - |
    When "Intake sync" lists the contacts
    Then Olivia soon sees when "Intake sync" was last used
    And Olivia sees a row for "Matter mirror" with:
      | Last used | - |

  Scenario: A request from a site the key does not allow still came in using the key
    Given Olivia has created an API key with:
      | Name            | Web widget      |
      | Scopes          | contacts:read   |
      | Allowed domains | app.example.com |
    When "Web widget" tries to list the contacts from "https://evil.example.net"
    Then it is refused with 403 origin_not_allowed
    And Olivia soon sees when "Web widget" was last used

  Scenario: A key with a typo is rejected
    Given Olivia has created an API key "Intake sync" for "contacts:read"
    When someone lists the contacts with "Intake sync" mistyped
    Then it is refused with 401 invalid_api_key
    And the refusal asks for a valid token

  Scenario: A malformed key, or a key nobody has, is rejected
    When someone lists the contacts with the key "esq_short"
    Then it is refused with 401 invalid_api_key
    When someone lists the contacts with the key "esq_NotAnApiKey"
    Then it is refused with 401 invalid_api_key
    When someone lists the contacts with the key "esq_0000-0000"
    Then it is refused with 401 invalid_api_key
    When someone lists the contacts with a well-formed key nobody has
    Then it is refused with 401 invalid_api_key
    And the refusal asks for a valid token

  Scenario: An integration can ask which key it is using, its firm and what it may do
    Given Olivia has created an API key "Intake sync" for "contacts:read, contacts:write, leads:read"
    When "Intake sync" asks which key it is
    Then the answer names the key "Intake sync" of the firm "Acme Law" with the permissions "contacts:read", "contacts:write", "leads:read"
    And the answer does not show the full key of "Intake sync"

  Scenario: Asking which key is in use needs a key, not a member's session
    When Olivia asks which key she is using, with her session
    Then it is refused with 403 api_key_required
