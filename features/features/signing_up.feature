Feature: Signing up a firm
  A firm signs up once: that creates the firm and its owner, and signs the owner in.

  Scenario: A new firm signs up and its owner is signed in
    When someone signs up the firm "Acme Law" in the "America/New_York" time zone with Olivia as its owner
    Then the firm "Acme Law" is created in the "America/New_York" time zone
    And Olivia is its owner, signed in with a session
    And Olivia is listed as an active owner member of the firm

  Scenario: A firm that names no time zone is in UTC
    When someone signs up the firm "Plain Law" with Olivia as its owner
    Then the firm "Plain Law" is created in the "UTC" time zone

  Scenario: An email address can only be used once
    Given a firm "Acme Law" whose owner is Olivia
    When someone signs up a firm with Olivia's email address
    Then it is refused with 409 email_taken

  Scenario: A signup with several mistakes lists every failing field
    When someone signs up a firm with no firm name, the time zone "Mars/Olympus" and the password "short"
    Then it is refused with 422 validation_failed listing the fields "firm_name", "time_zone", "owner.password"
