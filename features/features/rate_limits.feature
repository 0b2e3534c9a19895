Feature: Limit how often a key may be used
  What can a key actually do? Two limits always apply: the scopes you ticked and the access of
  the member who created it. A third is yours to choose: a rate limit, at most so many requests
  per second, minute or hour. Set it when you create the key, change or remove it later from the
  row's ... menu, and a rolled key keeps it. Past the limit, requests are refused until the next
  second, minute or hour begins; every answer tells the integration how many requests it has
  left and when more come, so it can pace itself. Every server counts toward the same limit, and
  each change is recorded in your firm's audit log as an update to the key.

  Background:
    Given a firm "Acme Law" whose owner is Olivia

  Scenario: A key past its rate limit is refused until the next hour, and told when to come back
    Given Olivia has created an API key with:
      | Name       | Contractor import |
      | Scopes     | contacts:read     |
      | Rate limit | 3 per hour        |
    When "Contractor import" lists the contacts 3 times
    Then each answer said how many requests were left: 2, 1, 0
    When "Contractor import" tries to list the contacts
    Then it is refused with 429 rate_limited
    And the answer says how many seconds to wait
    When "Contractor import" asks which key it is
    Then it is refused with 429 rate_limited

  Scenario: The keys table shows each key's rate limit
    Given Olivia has created an API key with:
      | Name       | Intake sync    |
      | Scopes     | contacts:write |
      | Rate limit | 100 per minute |
    And Olivia has created an API key "Mirror" for "matters:read"
    Then the rate limit of "Intake sync" is 100 per minute
    And the rate limit of "Mirror" is none
    When Olivia opens "/settings/developers" in her browser
    Then the row of "Intake sync" shows "100 per minute"
    And the row of "Mirror" shows "No limit"

  Scenario: Olivia changes a key's limit, then removes it, and the very next request sees each change
    Given Olivia has created an API key "Intake sync" for "contacts:read"
    When Olivia sets the rate limit of "Intake sync" to 1 per hour
    Then the rate limit of "Intake sync" is 1 per hour
    When "Intake sync" asks which key it is
    Then it works
    When "Intake sync" asks which key it is
    Then it is refused with 429 rate_limited
    When Olivia removes the rate limit of "Intake sync"
    And "Intake sync" asks which key it is
    Then it works
    When Olivia opens the audit log
    Then the latest entry is "api_key.rate_limit_updated" by Olivia on the API key "Intake sync"
    And the entry's "before" is {"limit": 1, "window_seconds": 3600}
    And the entry's "after" is null

  Scenario: A rolled key keeps its rate limit
    Given Olivia has created an API key with:
      | Name       | Billing sync  |
      | Scopes     | matters:read  |
      | Rate limit | 500 per hour  |
    When Olivia rolls the API key "Billing sync" as "Billing sync, new", the old key stopping now
    Then the rate limit of "Billing sync, new" is 500 per hour

  Scenario: A limit out of range is refused with what to type instead
    When Olivia tries to create an API key with:
      | Name       | Too fast         |
      | Scopes     | contacts:read    |
      | Rate limit | 0 per minute     |
    Then it is refused with 422 validation_failed listing the fields "rate_limit.limit"
    And the message on "rate_limit.limit" mentions "1 to 1000000"
    And Olivia's API keys page is empty

  Scenario: Only an Active key's limit can be changed
    Given Olivia has created an API key "Old sync" for "contacts:read"
    And Olivia has revoked the API key "Old sync"
    When Olivia tries to set the rate limit of "Old sync" to 10 per minute
    Then it is refused with 409 api_key_not_active
