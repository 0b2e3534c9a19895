Feature: What a key can actually do
  Two limits apply at once: the scopes you ticked, and the access of the member who created it.
  A key can never exceed either. Each scope group has a Read box and a Write box: a key that just
  imports contacts needs Contacts: Write, while a key that mirrors your case list elsewhere might
  need only Matters: Read.

  Background:
    Given a firm "Acme Law" whose owner is Olivia

  Scenario Outline: Read and Write are independent: <group>
    Given Olivia has created an API key "Reader" for "<read>"
    And Olivia has created an API key "Writer" for "<write>"
    When "Reader" lists the <records>
    Then it works
    When "Reader" tries to add the <record> "Example"
    Then it is refused with 403 insufficient_scope
    And the refusal names the scope "<write>"
    When "Writer" adds the <record> "Example"
    Then it works
    When "Writer" tries to list the <records>
    Then it is refused with 403 insufficient_scope
    And the refusal names the scope "<read>"

    Examples:
      | group         | records       | record        | read                | write                |
      | Contacts      | contacts      | contact       | contacts:read       | contacts:write       |
      | Matters       | matters       | matter        | matters:read        | matters:write        |
      | Leads         | leads         | lead          | leads:read          | leads:write          |
      | Practice areas| practice areas| practice area | practice_areas:read | practice_areas:write |
      | Matter types  | matter types  | matter type   | matter_types:read   | matter_types:write   |

  Scenario: A key that imports contacts cannot touch anything else
    Given Olivia has created an API key "Contacts import" for "contacts:write"
    When "Contacts import" adds the contact "Ada Lovelace"
    Then it works
    When "Contacts import" tries to list the matters
    Then it is refused with 403 insufficient_scope
    And the refusal names the scope "matters:read"
    When "Contacts import" tries to add the lead "Lee Jones"
    Then it is refused with 403 insufficient_scope
    And the refusal names the scope "leads:write"

  Scenario: A key loses a permission the moment its creator's role loses it, and gets it back
    Given Adam has joined Olivia's firm as an administrator
    And Adam has created an API key "Intake sync" for "contacts:read, contacts:write"
    And Olivia has created an API key "Owner sync" for "contacts:write"
    When "Intake sync" adds the contact "Ada Lovelace"
    Then it works
    When Olivia takes the "contacts:write" permission away from the administrator role
    And "Intake sync" tries to add the contact "Grace Hopper"
    Then it is refused with 403 creator_lacks_permission
    And the refusal names the scope "contacts:write"
    When "Intake sync" lists the contacts
    Then it works
    When "Intake sync" asks which key it is
    Then the answer names the key "Intake sync" of the firm "Acme Law" with the permissions "contacts:read"
    When "Owner sync" adds the contact "Grace Hopper"
    Then it works
    When Olivia grants the "contacts:write" permission to the administrator role
    And "Intake sync" adds the contact "Katherine Johnson"
    Then it works
    When "Intake sync" asks which key it is
    Then the answer names the key "Intake sync" of the firm "Acme Law" with the permissions "contacts:read", "contacts:write"

  Scenario: A staff member's key can write contacts but never more than staff may
    Given Sam has joined Olivia's firm as staff
    And Olivia has granted the "api_keys" permission to the staff role
    And Sam has created an API key "Front desk" for "contacts:write, matters:read"
    When "Front desk" adds the contact "Ada Lovelace"
    Then it works
    When Olivia takes the "matters:read" permission away from the staff role
    And "Front desk" tries to list the matters
    Then it is refused with 403 creator_lacks_permission
    And the refusal names the scope "matters:read"

  Scenario: The keys of a member who is removed stop working, and their records stay
    Given Adam has joined Olivia's firm as an administrator
    And Adam has created an API key "Intake sync" for "contacts:read, contacts:write"
    When "Intake sync" adds the contact "Ada Lovelace"
    Then it works
    When Olivia removes Adam from the firm
    And "Intake sync" tries to list the contacts
    Then it is refused with 401 api_key_revoked
    And Olivia still finds the contact "Ada Lovelace" made by "Intake sync"
