Feature: Allowed domains in a browser
  A key with an allowlist only works from those domains when it is called from a browser, and
  requests from any other domain are blocked. It does not affect server-to-server calls (curl,
  Postman, a backend integration), since those send no browser origin. Allowed domains shows Any
  when the key is not restricted to any domain (the default).

  Background:
    Given a firm "Acme Law" whose owner is Olivia
    And Olivia has created an API key with:
      | Name            | Web widget                    |
      | Scopes          | contacts:read, contacts:write |
      | Allowed domains | app.example.com               |

  Scenario: A page on an allowed site can use the key and read the answer
    When "Web widget" lists the contacts from "https://app.example.com"
    Then it works
    And the browser on "https://app.example.com" may read the answer
    When "Web widget" adds the contact "Ada Lovelace" from "https://app.example.com"
    Then it works
    And the browser on "https://app.example.com" may read the answer

  Scenario: A page on any other site is blocked
    When "Web widget" tries to list the contacts from "https://evil.example.net"
    Then it is refused with 403 origin_not_allowed
    And the browser may not read the answer
    When "Web widget" tries to add the contact "Mallory" from "https://evil.example.net"
    Then it is refused with 403 origin_not_allowed
    And Olivia sees a row for "Web widget" with:
      | Allowed domains | app.example.com |

  Scenario: A page with no origin of its own is blocked
    When "Web widget" tries to list the contacts from "null"
    Then it is refused with 403 origin_not_allowed

  Scenario: Server-to-server calls are never affected
    When "Web widget" lists the contacts
    Then it works
    When "Web widget" adds the contact "Ada Lovelace"
    Then it works
    And Olivia still finds the contact "Ada Lovelace" made by "Web widget"

  Scenario: A wildcard allows every subdomain, but not the domain itself
    Given Olivia has created an API key with:
      | Name            | Portal widget |
      | Scopes          | contacts:read |
      | Allowed domains | *.example.com |
    Then "Portal widget" lists the contacts from these sites:
      | site                          | answer                 |
      | https://app.example.com       | works                  |
      | https://a.b.example.com       | works                  |
      | https://example.com           | 403 origin_not_allowed |
      | https://example.com.evil.test | 403 origin_not_allowed |
      | https://app.example.org       | 403 origin_not_allowed |

  Scenario: A key with Any allowed domain works from any site
    Given Olivia has created an API key "Open widget" for "contacts:read"
    Then Olivia sees a row for "Open widget" with:
      | Allowed domains | Any |
    And "Open widget" lists the contacts from these sites:
      | site                     | answer |
      | https://app.example.com  | works  |
      | https://evil.example.net | works  |
    When "Open widget" lists the contacts
    Then it works

  Scenario: A browser asking first is always answered, whatever the site
    When a browser on "https://evil.example.net" asks first whether it may POST /v1/contacts
    Then the browser is told it may send the POST with its key
    When a browser on "https://app.example.com" asks first whether it may DELETE /v1/contacts/00000000-0000-0000-0000-000000000000
    Then the browser is told it may send the DELETE with its key

  Scenario: Locking a key down after it leaked into a page it should not be on
    Given Olivia has created an API key "Leaked widget" for "contacts:read"
    When "Leaked widget" lists the contacts from "https://leaky.example.net"
    Then it works
    When Olivia saves the allowed domains of "Leaked widget" as:
      """
      app.example.com
      """
    And "Leaked widget" tries to list the contacts from "https://leaky.example.net"
    Then it is refused with 403 origin_not_allowed
    When "Leaked widget" lists the contacts from "https://app.example.com"
    Then it works
    When "Leaked widget" lists the contacts
    Then it works
