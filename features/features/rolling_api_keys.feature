Feature: Roll an API key without downtime
  Rolling a key gives it a new secret without stopping your integration. Esqase creates a new
  key with the same name, scopes, allowed domains, rate limit and expiry, and shows it once,
  like a new key. The old key keeps working for the grace period you pick (now, 1 hour, 24 hours or 7 days), so
  you can put the new key in place first; from the moment the grace period ends the old key is
  Revoked. The audit log shows the roll and, later, the old key's revocation.

  Background:
    Given a firm "Acme Law" whose owner is Olivia
    And Olivia has created an API key "Intake sync" for "contacts:write"

  Scenario: The old key keeps working until its grace period ends
    When Olivia rolls the API key "Intake sync" as "Intake sync, new", the old key stopping in 2 seconds
    Then the new key "Intake sync, new" is shown once, with the name, scopes, domains, rate limit and expiry of "Intake sync"
    When "Intake sync, new" asks which key it is
    Then it works
    When "Intake sync" asks which key it is
    Then it works
    When the grace period of "Intake sync" has ended
    And "Intake sync" asks which key it is
    Then it is refused with 401 api_key_revoked
    When "Intake sync, new" asks which key it is
    Then it works
    And the audit log soon shows "api_key.revoked" by the system on the API key "Intake sync"
    And the entry's "reason" is "rolled"

  Scenario: Rolling with no grace period stops the old key at once
    When Olivia rolls the API key "Intake sync" as "Intake sync, new", the old key stopping now
    And "Intake sync" asks which key it is
    Then it is refused with 401 api_key_revoked
    When "Intake sync, new" asks which key it is
    Then it works

  Scenario: A key in its grace period is not rolled twice; roll the new one instead
    When Olivia rolls the API key "Intake sync" as "Intake sync, new", the old key stopping in 3600 seconds
    And Olivia tries to roll the API key "Intake sync" as "Intake sync, again", the old key stopping in 60 seconds
    Then it is refused with 409 api_key_already_rolled
    When Olivia rolls the API key "Intake sync, new" as "Intake sync, newest", the old key stopping in 60 seconds
    Then the new key "Intake sync, newest" is shown once, with the name, scopes, domains, rate limit and expiry of "Intake sync, new"

  Scenario: A revoked key cannot be rolled
    Given Olivia has revoked the API key "Intake sync"
    When Olivia tries to roll the API key "Intake sync" as "Intake sync, new", the old key stopping in 60 seconds
    Then it is refused with 409 api_key_not_active
