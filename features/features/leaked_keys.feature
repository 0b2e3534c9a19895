Feature: A leaked key is revoked as soon as a secret scanner reports it
  Every key starts with "esq_" and ends with a checksum, so that secret scanners (GitHub's, for
  one) can recognise a key that was pushed to a public repository or pasted into an issue. When
  the scanner reports it, the key is revoked at once, before anyone can use it, and the firm sees
  why: the key shows as Revoked because it leaked, and the audit log says where it was found.

  Background:
    Given the service takes reports from a secret scanner
    And a firm "Acme Law" whose owner is Olivia
    And Olivia has created an API key "Intake sync" for "contacts:write"

  Scenario: A key pushed to a public repository stops working at once
    When a secret scanner reports the API key "Intake sync" found in a "commit" at "https://github.com/acme/intake/commit/4f2a"
    Then the scanner is told the key is ours
    When "Intake sync" asks which key it is
    Then it is refused with 401 api_key_revoked
    And Olivia sees the API key "Intake sync" as Revoked
    And the API key "Intake sync" shows it leaked
    And the API key "Intake sync" was revoked by no one
    And the audit log soon shows "api_key.revoked" by the system on the API key "Intake sync"
    And the entry's "reason" is "leaked"
    And the entry's "source" is "commit"
    And the entry's "url" is "https://github.com/acme/intake/commit/4f2a"

  Scenario: A string with a wrong checksum is not a key, and nothing changes
    When a secret scanner reports the API key "Intake sync" with one character changed
    Then the scanner is told the key is not ours
    And Olivia sees the API key "Intake sync" as Active

  Scenario: A key already revoked is ours, and stays revoked as it was
    Given Olivia has revoked the API key "Intake sync"
    When a secret scanner reports the API key "Intake sync" found in a "content" at ""
    Then the scanner is told the key is ours
    And the API key "Intake sync" was revoked by Olivia
