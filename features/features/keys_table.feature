Feature: Read the keys table
  The API keys page lists every key your firm has created, with a row for each: Name, Key (a
  masked preview), Scopes, Allowed domains, Status, Last used, Expires and Created by.
  The table is paginated, with Previous and Next buttons beneath it.

  Background:
    Given a firm "Acme Law" in the "America/New_York" time zone whose owner is Olivia

  Scenario: A firm with no keys yet
    Then Olivia's API keys page is empty

  Scenario: Each row describes one key
    When Olivia creates an API key with:
      | Name            | Intake sync     |
      | Scopes          | contacts:read, contacts:write |
      | Expires         | 2027-03-01      |
      | Allowed domains | app.example.com |
    Then Olivia sees a row for "Intake sync" with:
      | Name            | Intake sync                   |
      | Scopes          | contacts:read, contacts:write |
      | Allowed domains | app.example.com               |
      | Status          | Active                        |
      | Last used       | -                             |
      | Expires         | 2027-03-01T05:00:00.000Z      |
      | Created by      | Olivia                        |
    And the Key column of "Intake sync" shows its masked preview
    And the API key "Intake sync" looks the same when Olivia opens it

  Scenario: The page lists every key the firm has created, and only the firm's
    Given Adam has joined Olivia's firm as an administrator
    And a firm "Other Law" whose owner is Oscar
    And Olivia has created an API key "Intake sync" for "contacts:write"
    And Adam has created an API key "Migration script" for "matters:read"
    And Oscar has created an API key "Other firm's key" for "leads:read"
    When Adam opens the API keys page
    Then the page shows "Migration script", "Intake sync"
    When Oscar opens the API keys page
    Then the page shows "Other firm's key"

  Scenario: The table is paginated, newest first
    Given Olivia has created an API key "First" for "contacts:read"
    And Olivia has created an API key "Second" for "contacts:read"
    And Olivia has created an API key "Third" for "contacts:read"
    When Olivia opens the API keys page showing 2 keys per page
    Then the page shows "Third", "Second"
    And there is a Next button but no Previous button
    When Olivia clicks Next
    Then the page shows "First"
    And there is a Previous button but no Next button
    When Olivia clicks Previous
    Then the page shows "Third", "Second"
    And there is a Next button but no Previous button

  Scenario: Showing only the Active keys
    Given Olivia has created an API key "Kept" for "contacts:read"
    And Olivia has created an API key "Leaked" for "contacts:read"
    And Olivia has revoked the API key "Leaked"
    When Olivia opens the API keys page filtered to active keys
    Then the page shows "Kept"
    When Olivia opens the API keys page filtered to revoked keys
    Then the page shows "Leaked"

  Scenario: A key past its expiry date is Expired
    Given Olivia has created an API key "Short lived" for "contacts:read" that expires in 3 seconds
    When the expiry time of "Short lived" has passed
    Then Olivia sees the API key "Short lived" as Expired
    When Olivia opens the API keys page filtered to expired keys
    Then the page shows "Short lived"

  Scenario: Another firm's key cannot be opened
    Given a firm "Other Law" whose owner is Oscar
    And Oscar has created an API key "Other firm's key" for "leads:read"
    When Olivia opens the API key "Other firm's key"
    Then it is refused with 404 not_found
