Feature: The audit log
  Auditors read what happened to the firm's keys and permissions from the events themselves: who
  did it (a member, or the system for an expiry), what, to which key or role, when, and the
  details that matter. The entries form a hash chain, so an edit made behind the service's back
  is detected. Only roles with the audit log permission can read it.

  Background:
    Given a firm "Acme Law" whose owner is Olivia
    And Olivia has created an API key "Intake sync" for "contacts:write"

  Scenario: A created key is recorded
    When Olivia opens the audit log
    Then the latest entry is "api_key.created" by Olivia on the API key "Intake sync"
    And the entry's "scopes" are ["contacts:write"]
    And the entry's "allowed_domains" are []
    And the audit log holds no key's secret or hash

  Scenario: A domain edit is recorded as an update to the key
    When Olivia saves the allowed domains of "Intake sync" as:
      """
      app.example.com, *.example.com
      """
    And Olivia opens the audit log
    Then the latest entry is "api_key.domains_updated" by Olivia on the API key "Intake sync"
    And the entry's "before" are []
    And the entry's "after" are ["app.example.com", "*.example.com"]

  Scenario: A revocation is recorded with its reason
    Given Adam has joined Olivia's firm as an administrator
    When Adam revokes the API key "Intake sync"
    And Olivia opens the audit log
    Then the latest entry is "api_key.revoked" by Adam on the API key "Intake sync"
    And the entry's "reason" is "revoked_by_member"

  Scenario: An expiry is recorded by the system
    Given Olivia has created an API key "Short lived" for "contacts:read" that expires in 2 seconds
    When the expiry time of "Short lived" has passed
    Then the audit log soon shows "api_key.expired" by the system on the API key "Short lived"

  Scenario: A change to the roles and permissions grid is recorded
    When Olivia grants the "audit_log" permission to the attorney role
    And Olivia opens the audit log
    Then the latest entry is "role.permissions_changed" by Olivia on the attorney role
    And the entry's "after" include "audit_log"
    And the entry's "before" do not include "audit_log"

  Scenario: An auditor without the audit log permission is refused
    Given Alice has joined Olivia's firm as an attorney
    When Alice tries to open the audit log
    Then it is refused with 403 permission_denied
    When Olivia grants the "audit_log" permission to the attorney role
    And Alice opens the audit log
    Then the latest entry is "role.permissions_changed" by Olivia on the attorney role

  Scenario: Another firm's entries are not visible
    Given a firm "Other Law" whose owner is Oscar
    When Oscar opens the audit log
    Then no entry mentions the API key "Intake sync"

  Scenario: Tampering is detected
    Given Olivia has revoked the API key "Intake sync"
    Then the audit log is intact with 4 entries
    When someone edits the details of entry 3 directly in the database
    Then the audit log is broken at entry 3
