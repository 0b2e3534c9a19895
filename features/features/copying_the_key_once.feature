Feature: Copy the key, once
  When you create a key, Esqase shows you the full key exactly once. It starts with esq_
  followed by a long random string. This is the only time the full key is ever shown.

  Background:
    Given a firm "Acme Law" whose owner is Olivia

  Scenario: The full key is shown once, when the key is created
    When Olivia creates an API key "Intake sync" for "contacts:write"
    Then the key is created
    And the full key starts with "esq_" followed by a long random string
    And the answer may not be kept in any cache

  Scenario: The full key is never shown again
    Given Olivia has created an API key "Intake sync" for "contacts:write"
    Then the full key of "Intake sync" appears nowhere on the API keys page
    And the full key of "Intake sync" does not appear when Olivia opens the key
    When Olivia saves the allowed domains of "Intake sync" as:
      """
      app.example.com
      """
    Then the answer does not show the full key of "Intake sync"
    When Olivia revokes the API key "Intake sync"
    Then the answer does not show the full key of "Intake sync"
    And the full key of "Intake sync" appears nowhere on the API keys page

  Scenario: Every key is a different random string
    Given Olivia has created an API key "First" for "contacts:read"
    And Olivia has created an API key "Second" for "contacts:read"
    Then the full keys of "First" and "Second" are different

  Scenario: Once the dialog closes, the new key appears Active with its masked preview
    Given Olivia has created an API key "Intake sync" for "contacts:write"
    Then Olivia sees the API key "Intake sync" as Active
    And the Key column of "Intake sync" shows its masked preview
