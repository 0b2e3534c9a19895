Feature: Revoke an API key
  Revoking a key turns it off for good. The key's status changes to Revoked. Revoking cannot be
  undone. Only Active keys show row actions (the Domains button and the ... menu).

  Background:
    Given a firm "Acme Law" whose owner is Olivia
    And Olivia has created an API key "Intake sync" for "contacts:write"

  Scenario: Revoking a key
    When Olivia revokes the API key "Intake sync"
    Then the key is revoked by Olivia
    And Olivia sees the API key "Intake sync" as Revoked
    And the API key "Intake sync" was revoked by Olivia

  Scenario: An administrator can revoke a key someone else created
    Given Adam has joined Olivia's firm as an administrator
    When Adam revokes the API key "Intake sync"
    Then the key is revoked by Adam

  Scenario: Revoking cannot be undone
    Given Olivia has revoked the API key "Intake sync"
    When Olivia tries to revoke the API key "Intake sync"
    Then it is refused with 409 api_key_not_active
    And Olivia sees the API key "Intake sync" as Revoked
    And the API key "Intake sync" was revoked by Olivia

  Scenario: A revoked key shows no row actions
    Given Olivia has revoked the API key "Intake sync"
    When Olivia tries to save the allowed domains of "Intake sync" as:
      """
      app.example.com
      """
    Then it is refused with 409 api_key_not_active
    When Olivia tries to revoke the API key "Intake sync"
    Then it is refused with 409 api_key_not_active

  Scenario: An expired key has nothing left to turn off
    Given Olivia has created an API key "Short lived" for "contacts:read" that expires in 3 seconds
    When the expiry time of "Short lived" has passed
    And Olivia tries to revoke the API key "Short lived"
    Then it is refused with 409 api_key_not_active
    And Olivia sees the API key "Short lived" as Expired

  Scenario: Revoking one key leaves the others working
    Given Olivia has created an API key "Matter mirror" for "matters:read"
    When Olivia revokes the API key "Intake sync"
    Then Olivia sees the API key "Matter mirror" as Active

  Scenario: Members without the API keys permission cannot revoke
    Given Alice has joined Olivia's firm as an attorney
    When Alice tries to revoke the API key "Intake sync"
    Then it is refused with 403 permission_denied
    And Olivia sees the API key "Intake sync" as Active

  Scenario: Another firm's key cannot be revoked
    Given a firm "Other Law" whose owner is Oscar
    When Oscar tries to revoke the API key "Intake sync"
    Then it is refused with 404 not_found
    And Olivia sees the API key "Intake sync" as Active
