Feature: The API keys page in the browser
  API keys live under Settings, in a Developers group, on the API keys page
  (/settings/developers). The page lists every key the firm has created, with a row for each.
  These scenarios read the pages as the browser receives them, signed in with the browser's
  session cookie; tests/browser.rs walks the same pages in a real browser.

  Background:
    Given a firm "Acme Law" in the "America/New_York" time zone whose owner is Olivia

  Scenario: An unsigned visit goes to sign-in and comes back after
    When someone opens "/settings/developers" without signing in
    Then they are sent to "/login?next=/settings/developers"
    When Olivia signs in from that page
    Then she is sent to "/settings/developers"

  Scenario: The Developers group holds the API keys card
    When Olivia opens "/settings" in her browser
    Then the page reads "Developers"
    And the page reads "Create keys to sync contacts, matters, and leads via the REST API."

  Scenario: A role without the API keys permission sees neither the card nor the page
    Given Ada has joined Olivia's firm as an attorney
    When Ada opens "/settings" in her browser
    Then the page does not read "Create keys to sync contacts, matters, and leads via the REST API."
    When Ada opens "/settings/developers" in her browser
    Then the page answers 403 and reads "You don't have access to this page"

  Scenario: With no keys, the page says so and offers to create the first one
    When Olivia opens "/settings/developers" in her browser
    Then the page reads "No API keys yet"
    And the page reads "Create your first API key"

  Scenario: Each row describes one key in words
    Given Olivia has created an API key with:
      | Name            | Intake sync                                |
      | Scopes          | contacts:read, contacts:write, matters:read |
      | Expires         | 2027-03-01                                 |
      | Allowed domains | app.example.com, *.example.com             |
    And Olivia has created an API key "Migration script" for "matters:read"
    When Olivia opens "/settings/developers" in her browser
    Then the row of "Intake sync" shows "Contacts: Read, Write", "Matters: Read", "app.example.com", "*.example.com", "Active", "Mar 1, 2027", "Olivia"
    And the row of "Intake sync" shows its masked preview and never its secret
    And the row of "Migration script" shows "Matters: Read", "Any", "Active"
    And the row of "Intake sync" offers "Domains" and "More actions for Intake sync"

  Scenario: Only Active keys show row actions; the others show a dash
    Given Olivia has created an API key "Leaked" for "contacts:read"
    And Olivia has revoked the API key "Leaked"
    And Olivia has created an API key "Short lived" for "contacts:read" that expires in 2 seconds
    When the expiry time of "Short lived" has passed
    And Olivia opens "/settings/developers" in her browser
    Then the row of "Leaked" shows "Revoked" and a dash for its actions
    And the row of "Short lived" shows "Expired" and a dash for its actions

  Scenario: A key's name is shown as text, never as markup
    Given Olivia has created an API key "<script>alert(1)</script>" for "contacts:read"
    When Olivia opens "/settings/developers" in her browser
    Then the page reads "<script>alert(1)</script>" as text

  Scenario: A change made with the browser session from another site is refused
    When a page on another site makes Olivia's browser create an API key
    Then it is refused with 403 cross_site_request
    When Olivia's own page creates an API key "From the page" for "contacts:read"
    Then the key is created
