Feature: Create an API key
  In the Create API key dialog: a Name (required), Scopes (at least one), Expires (optional) and
  Allowed domains (optional). A key always acts as the person who created it, and can never
  exceed that member's access.

  Background:
    Given a firm "Acme Law" in the "America/New_York" time zone whose owner is Olivia

  Scenario: Creating a key with every setting
    When Olivia creates an API key with:
      | Name            | Intake sync                    |
      | Scopes          | contacts:write                 |
      | Expires         | 2027-03-01                     |
      | Allowed domains | app.example.com,*.example.com  |
    Then the key is created
    And Olivia sees a row for "Intake sync" with:
      | Name            | Intake sync                    |
      | Scopes          | contacts:write                 |
      | Allowed domains | app.example.com, *.example.com |
      | Status          | Active                         |
      | Last used       | -                              |
      | Expires         | 2027-03-01T05:00:00.000Z       |
      | Created by      | Olivia                         |

  Scenario: A key with only a name and a scope never expires and allows any domain
    When Olivia creates an API key "Matter mirror" for "matters:read"
    Then the key is created
    And Olivia sees a row for "Matter mirror" with:
      | Scopes          | matters:read |
      | Allowed domains | Any          |
      | Expires         | -            |
      | Last used       | -            |

  Scenario: An expiry date is midnight of that date in the firm's time zone
    When Olivia creates an API key with:
      | Name    | Summer contractor |
      | Scopes  | leads:read        |
      | Expires | 2027-07-01        |
    Then the key is created
    And Olivia sees a row for "Summer contractor" with:
      | Expires | 2027-07-01T04:00:00.000Z |

  Scenario: Read and Write are separate boxes
    When Olivia creates an API key "Contacts import" for "contacts:write"
    Then Olivia sees a row for "Contacts import" with:
      | Scopes | contacts:write |
    When Olivia creates an API key "Matters both ways" for "matters:read, matters:write, matters:read"
    Then Olivia sees a row for "Matters both ways" with:
      | Scopes | matters:read, matters:write |

  Scenario: A key needs a name and at least one scope
    When Olivia tries to create an API key with:
      | Name   |  |
      | Scopes |  |
    Then it is refused with 422 validation_failed listing the fields "name", "scopes"
    And Olivia's API keys page is empty

  Scenario: A key without a name is refused
    When Olivia tries to create an API key with:
      | Scopes | contacts:read |
    Then it is refused with 422 validation_failed listing the fields "name"

  Scenario: A name of only spaces is no name
    When Olivia tries to create an API key "   " for "contacts:read"
    Then it is refused with 422 validation_failed listing the fields "name"

  Scenario: A key without a scope is refused
    When Olivia tries to create an API key with:
      | Name | Intake sync |
    Then it is refused with 422 validation_failed listing the fields "scopes"

  Scenario: Only the scopes in the checklist exist
    When Olivia tries to create an API key with:
      | Name   | Intake sync       |
      | Scopes | everything:delete |
    Then it is refused with 422 validation_failed listing the fields "scopes"

  Scenario: An expiry date in the past is refused
    When Olivia tries to create an API key with:
      | Name    | Intake sync   |
      | Scopes  | contacts:read |
      | Expires | 2020-01-01    |
    Then it is refused with 422 validation_failed listing the fields "expires_at"

  Scenario: A key acts as the person who created it
    Given Adam has joined Olivia's firm as an administrator
    When Adam creates an API key "Intake sync" for "contacts:write"
    Then Olivia sees a row for "Intake sync" with:
      | Created by | Adam |

  Scenario: A key can never get a scope its creator's role lacks
    Given Sam has joined Olivia's firm as staff
    And Olivia has granted the "api_keys" permission to the staff role
    When Sam tries to create an API key "Matters writer" for "matters:write"
    Then it is refused with 422 validation_failed listing the fields "scopes"
    When Sam creates an API key "Contacts import" for "contacts:write"
    Then the key is created
