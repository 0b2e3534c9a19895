Feature: Common questions

  Background:
    Given a firm "Acme Law" whose owner is Olivia

  Scenario: Where do I get the key string? Only right after creating the key
    When Olivia creates an API key "Intake sync" for "contacts:write"
    Then the full key starts with "esq_" followed by a long random string
    And the full key of "Intake sync" appears nowhere on the API keys page
    And the Key column of "Intake sync" shows its masked preview

  Scenario: I lost my key. Can I see it again? No: revoke it and create a new one
    Given Olivia has created an API key "Lost key" for "contacts:write"
    Then the full key of "Lost key" does not appear when Olivia opens the key
    When Olivia revokes the API key "Lost key"
    And Olivia creates an API key "Replacement key" for "contacts:write"
    Then the key is created
    And the full keys of "Lost key" and "Replacement key" are different
    And Olivia sees the API key "Lost key" as Revoked
    And Olivia sees the API key "Replacement key" as Active

  Scenario: Why can't I create a key? Attorneys and staff cannot by default
    Given Alice has joined Olivia's firm as an attorney
    And Sam has joined Olivia's firm as staff
    When Alice tries to create an API key "Docket sync" for "matters:read"
    Then it is refused with 403 permission_denied
    When Sam tries to create an API key "Contacts import" for "contacts:write"
    Then it is refused with 403 permission_denied

  Scenario: Why can't I create a key? Until a firm owner grants the permission to the role
    Given Alice has joined Olivia's firm as an attorney
    When Olivia grants the "api_keys" permission to the attorney role
    And Alice creates an API key "Docket sync" for "matters:read"
    Then the key is created

  Scenario: What can a key actually do? Never more than the member who created it
    Given Sam has joined Olivia's firm as staff
    And Olivia has granted the "api_keys" permission to the staff role
    When Sam tries to create an API key "Everything" for "contacts:read, matters:read, matters:write"
    Then it is refused with 422 validation_failed listing the fields "scopes"
    And Olivia's API keys page is empty

  Scenario: Can I limit which sites use a key? Yes, when creating it or later with the Domains button
    When Olivia creates an API key with:
      | Name            | Web widget      |
      | Scopes          | contacts:read   |
      | Allowed domains | app.example.com |
    Then the allowed domains of "Web widget" are "app.example.com"
    When Olivia saves the allowed domains of "Web widget" as:
      """
      app.example.com, www.example.com
      """
    Then the allowed domains of "Web widget" are "app.example.com, www.example.com"
