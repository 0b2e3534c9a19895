Feature: Logging in and out
  Members work with a session: logging in gives one, logging out ends it at once.

  Background:
    Given a firm "Acme Law" whose owner is Olivia

  Scenario: Logging in gives a new session that works
    When Olivia logs in with her password
    Then Olivia has a new session
    And Olivia can see the firm's members

  Scenario: Logging out ends the session at once
    When Olivia logs out
    Then Olivia's old session no longer works

  Scenario: A wrong email and a wrong password get the same answer
    When someone logs in as Olivia with a wrong password
    Then it is refused with 401 invalid_login
    When someone logs in with an email address nobody has
    Then it is refused with 401 invalid_login
    And both refusals are the same

  Scenario: Guessing a password is slowed down, and the firm is told
    When someone tries 5 wrong passwords for Olivia
    And Olivia logs in with her password
    Then it is refused with 429 too_many_attempts
    And the answer says how many seconds to wait
    When Olivia waits that long and logs in with her password
    Then Olivia has a new session
    When Olivia opens the audit log
    Then the latest entry is "member.sign_in_throttled" by the system on Olivia
    And the entry's "failures" is 5
