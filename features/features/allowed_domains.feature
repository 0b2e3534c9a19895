Feature: Edit a key's allowed domains
  Allowed domains is a textarea: one hostname per line or comma-separated, empty to allow any
  domain. The list can be changed on an Active key at any time, without creating a new key; a
  key's scopes and expiry are fixed when it is created.

  Background:
    Given a firm "Acme Law" in the "America/New_York" time zone whose owner is Olivia
    And Olivia has created an API key with:
      | Name            | Web widget      |
      | Scopes          | contacts:read   |
      | Expires         | 2027-03-01      |
      | Allowed domains | app.example.com |

  Scenario: Saving a new list of domains on an Active key
    When Olivia saves the allowed domains of "Web widget" as:
      """
      app.example.com
      portal.example.com, *.example.org
      """
    Then the domains are saved
    And the allowed domains of "Web widget" are "app.example.com, portal.example.com, *.example.org"
    And the scopes and expiry of "Web widget" are unchanged
    And Olivia sees the API key "Web widget" as Active

  Scenario: Domains are tidied up as they are saved
    When Olivia saves the allowed domains of "Web widget" as:
      """
      Portal.Example.COM.
      portal.example.com,APP.example.com
      app.example.com.
      """
    Then the domains are saved
    And the allowed domains of "Web widget" are "portal.example.com, app.example.com"

  Scenario: An empty list allows any domain
    When Olivia clears the allowed domains of "Web widget"
    Then the domains are saved
    And the allowed domains of "Web widget" are "Any"

  Scenario: Domains typed in the create dialog are tidied up the same way
    When Olivia creates an API key "Textarea key" for "contacts:read" with the allowed domains:
      """
      App.Example.com
      *.Example.com., app.example.com
      """
    Then the key is created
    And the allowed domains of "Textarea key" are "app.example.com, *.example.com"

  Scenario Outline: A domain typed the wrong way is refused with a message saying what to type
    When Olivia tries to save the allowed domains of "Web widget" as:
      """
      <typed>
      """
    Then it is refused with 422 validation_failed listing the fields "allowed_domains"
    And the message on "allowed_domains" mentions "<hint>"
    And the allowed domains of "Web widget" are "app.example.com"

    Examples:
      | typed                        | hint            |
      | https://app.example.com      | app.example.com |
      | app.example.com/intake       | app.example.com |
      | app.example.com:8443         | app.example.com |

  Scenario: A URL is refused in the create dialog too
    When Olivia tries to create an API key with:
      | Name            | Intake sync             |
      | Scopes          | contacts:write          |
      | Allowed domains | https://app.example.com |
    Then it is refused with 422 validation_failed listing the fields "allowed_domains"
    And the message on "allowed_domains" mentions "app.example.com"

  Scenario: A revoked key's domains cannot be edited
    Given Olivia has revoked the API key "Web widget"
    When Olivia tries to save the allowed domains of "Web widget" as:
      """
      other.example.com
      """
    Then it is refused with 409 api_key_not_active
    And the allowed domains of "Web widget" are "app.example.com"

  Scenario: An expired key's domains cannot be edited
    Given Olivia has created an API key "Short lived" for "contacts:read" that expires in 3 seconds
    When the expiry time of "Short lived" has passed
    And Olivia tries to save the allowed domains of "Short lived" as:
      """
      other.example.com
      """
    Then it is refused with 409 api_key_not_active

  Scenario: Another firm's key cannot be edited
    Given a firm "Other Law" whose owner is Oscar
    When Oscar tries to save the allowed domains of "Web widget" as:
      """
      evil.example.net
      """
    Then it is refused with 404 not_found
    And the allowed domains of "Web widget" are "app.example.com"
