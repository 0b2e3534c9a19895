//! Request bodies as they arrive, their OpenAPI schemas, and their parse into the commands'
//! input (`NewApiKey`, `NewFirm`, …). A body is parsed whole: every failing field is reported
//! at once, and a command only ever sees values its domain types accept.
//!
//! Every field is an `Option` so that a missing one is "is required" against its name (a 422
//! that names the field), not serde's 400 about the whole body.

use commands::api_keys::NewApiKey;
use commands::firms::{NewFirm, NewOwner};
use commands::members::{InvitationAcceptance, Login, NewInvitation};
use domain::api_key::GracePeriod;
use domain::expiry::parse_expiry;
use domain::names::{Email, FirmName, FirmTimeZone, KeyName, Password, PersonName};
use domain::rate_limit::RateLimitError;
use domain::schema::{bearer_token, single_line};
use domain::secret::{BearerToken, TokenKind};
use domain::{AllowedDomains, FieldErrors, PermissionSet, RateLimit, Role, Scopes, Timestamp};
use serde::Deserialize;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType, Type};
use utoipa::ToSchema;

/// The body of `POST /v1/api-keys`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// The label: trimmed, 1 to 100 characters, no control characters.
    #[schema(required = true, schema_with = key_name_schema)]
    pub name: Option<String>,
    /// At least one scope; duplicates are folded. None beyond the creator's own role.
    #[schema(required = true, schema_with = domain::schema::scopes_request)]
    pub scopes: Option<Vec<String>>,
    /// `YYYY-MM-DD` (00:00 of that date in the firm's time zone) or an RFC 3339 time; it must
    /// be in the future. Absent or null for a key that never expires.
    #[schema(schema_with = expiry_schema)]
    pub expires_at: Option<String>,
    /// Hostnames; each string may hold several, split on commas and newlines. Absent, null or
    /// empty allows any domain.
    #[schema(schema_with = domains_request_schema)]
    pub allowed_domains: Option<Vec<String>>,
    /// At most `limit` requests per window of `window_seconds`, across every node. Absent or
    /// null for a key without a limit.
    pub rate_limit: Option<RateLimitRequest>,
}

impl CreateApiKeyRequest {
    /// Parses the request of a member whose firm keeps `time_zone` (a bare expiry date is 00:00
    /// there), at `now`.
    pub fn parse(self, time_zone: FirmTimeZone, now: Timestamp) -> Result<NewApiKey, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.required("name", self.name.as_deref(), KeyName::parse);
        let scopes = errors.check("scopes", Scopes::parse(&self.scopes.unwrap_or_default()));
        let expires_at = match self.expires_at.as_deref() {
            None => Some(None),
            Some(raw) => errors.check("expires_at", parse_expiry(raw, time_zone, now)).map(Some),
        };
        let allowed_domains =
            errors.check_each("allowed_domains", AllowedDomains::parse(&self.allowed_domains.unwrap_or_default()));
        let rate_limit = match self.rate_limit {
            None => Some(None),
            Some(limit) => limit.parse(&mut errors).map(Some),
        };
        match (name, scopes, expires_at, allowed_domains, rate_limit) {
            (Some(name), Some(scopes), Some(expires_at), Some(allowed_domains), Some(rate_limit))
                if errors.is_empty() =>
            {
                Ok(NewApiKey { name, scopes, expires_at, allowed_domains, rate_limit })
            }
            _ => Err(errors),
        }
    }
}

/// A rate limit as a request sends it (in `POST /v1/api-keys` and
/// `PUT /v1/api-keys/{id}/rate-limit`). Each number is read as any JSON value so that a
/// fraction, a string or a number out of range is a 422 on that field, not a 400 about the body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRequest {
    /// Requests allowed per window: 1 to 1000000.
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 1000000, examples(100))]
    pub limit: Option<serde_json::Value>,
    /// The window's length in whole seconds: 1 to 3600. Windows are fixed and aligned on the
    /// Unix epoch (a 60-second window runs from one whole minute to the next).
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 3600, examples(60))]
    pub window_seconds: Option<serde_json::Value>,
}

impl RateLimitRequest {
    /// The limit, or `None` with each failing part recorded as `rate_limit.limit` or
    /// `rate_limit.window_seconds`.
    fn parse(self, errors: &mut FieldErrors) -> Option<RateLimit> {
        let limit = whole_number_field(errors, "rate_limit.limit", self.limit, RateLimit::parse_limit);
        let window = whole_number_field(
            errors,
            "rate_limit.window_seconds",
            self.window_seconds,
            RateLimit::parse_window_seconds,
        );
        RateLimit::new(limit?.into(), window?.into()).ok()
    }
}

/// A whole-number part of a rate limit: "is required" when absent; `parse`'s rule for anything
/// but a whole number it accepts.
fn whole_number_field(
    errors: &mut FieldErrors,
    field: &str,
    raw: Option<serde_json::Value>,
    parse: fn(i64) -> Result<u32, RateLimitError>,
) -> Option<u32> {
    let Some(raw) = raw else {
        errors.push(field, "is required");
        return None;
    };
    // Anything but a whole number gets the same sentence as one out of range: what to send.
    errors.check(field, parse(whole_number(&raw).unwrap_or(i64::MIN)))
}

/// A JSON number with no fraction, as JSON Schema's `integer` counts one (`60.0` is 60).
fn whole_number(raw: &serde_json::Value) -> Option<i64> {
    raw.as_i64().or_else(|| raw.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
}

/// The body of `PUT /v1/api-keys/{id}/rate-limit`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitUpdateRequest {
    /// The new limit, or null to remove it (the key then has no limit).
    #[serde(default, deserialize_with = "present")]
    #[schema(required = true, value_type = Option<RateLimitRequest>)]
    pub rate_limit: Option<Option<RateLimitRequest>>,
}

impl RateLimitUpdateRequest {
    pub fn parse(self) -> Result<Option<RateLimit>, FieldErrors> {
        let Some(requested) = self.rate_limit else {
            return Err(FieldErrors::single("rate_limit", "is required; send null to remove the limit"));
        };
        let Some(limit) = requested else { return Ok(None) };
        let mut errors = FieldErrors::new();
        match limit.parse(&mut errors) {
            Some(parsed) if errors.is_empty() => Ok(Some(parsed)),
            _ => Err(errors),
        }
    }
}

/// Reads a field that is present (null included) as `Some`, so that an absent field (`None`,
/// by `#[serde(default)]`) and an explicit null (`Some(None)`) differ.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// The body of `PUT /v1/api-keys/{id}/allowed-domains`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedDomainsRequest {
    /// The new list; empty allows any domain.
    #[schema(required = true, schema_with = domains_update_schema)]
    pub allowed_domains: Option<Vec<String>>,
}

impl AllowedDomainsRequest {
    pub fn parse(self) -> Result<AllowedDomains, FieldErrors> {
        let Some(entries) = self.allowed_domains else {
            return Err(FieldErrors::single("allowed_domains", "is required; send [] to allow any domain"));
        };
        let mut errors = FieldErrors::new();
        let domains = errors.check_each("allowed_domains", AllowedDomains::parse(&entries));
        domains.ok_or(errors)
    }
}

/// The body of `POST /v1/api-keys/{id}/roll`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollRequest {
    /// How long the old key keeps working, in whole seconds: 0 (revoked at once) to 604800
    /// (7 days); `60.0` is 60, as JSON Schema counts it an integer. Read as any JSON value so
    /// that a fraction, a string or a negative number is a 422 on this field, not a 400 about
    /// the body.
    #[schema(required = true, value_type = i64, minimum = 0, maximum = 604800, examples(3600))]
    pub grace_period_seconds: Option<serde_json::Value>,
}

impl RollRequest {
    pub fn parse(self) -> Result<GracePeriod, FieldErrors> {
        let Some(raw) = self.grace_period_seconds else {
            return Err(FieldErrors::single("grace_period_seconds", "is required"));
        };
        let seconds = whole_number(&raw).ok_or(GracePeriod::RULE);
        seconds.and_then(GracePeriod::from_seconds).map_err(|rule| FieldErrors::single("grace_period_seconds", rule))
    }
}

/// The body of `POST /v1/firms`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(required = true, schema_with = firm_name_schema)]
    pub firm_name: Option<String>,
    /// An IANA time zone; `UTC` when absent or null. An unknown zone is a 422.
    #[schema(examples("America/New_York"))]
    pub time_zone: Option<String>,
    #[schema(required = true, value_type = OwnerRequest)]
    pub owner: Option<OwnerRequest>,
}

/// The owner part of a signup.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerRequest {
    #[schema(required = true, schema_with = person_name_schema)]
    pub name: Option<String>,
    /// Their login: unique across the service, compared without case.
    #[schema(required = true, schema_with = domain::schema::email)]
    pub email: Option<String>,
    /// 12 to 1024 characters, not trimmed.
    #[schema(required = true, schema_with = password_schema)]
    pub password: Option<String>,
}

impl std::fmt::Debug for OwnerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerRequest").field("name", &self.name).field("email", &self.email).finish_non_exhaustive()
    }
}

impl SignupRequest {
    pub fn parse(self) -> Result<NewFirm, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.required("firm_name", self.firm_name.as_deref(), FirmName::parse);
        let time_zone = match self.time_zone.as_deref() {
            None => Some(FirmTimeZone::default()),
            Some(raw) => errors.check("time_zone", FirmTimeZone::parse(raw)),
        };
        let owner = self.owner.unwrap_or_default();
        let owner_name = errors.required("owner.name", owner.name.as_deref(), PersonName::parse);
        let email = errors.required("owner.email", owner.email.as_deref(), Email::parse);
        let password = errors.required("owner.password", owner.password.as_deref(), Password::parse);
        match (name, time_zone, owner_name, email, password) {
            (Some(name), Some(time_zone), Some(owner_name), Some(email), Some(password)) => {
                Ok(NewFirm { name, time_zone, owner: NewOwner { name: owner_name, email, password } })
            }
            _ => Err(errors),
        }
    }
}

/// The body of `POST /v1/members`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    #[schema(required = true, schema_with = person_name_schema)]
    pub name: Option<String>,
    /// Their login: unique across the service, compared without case.
    #[schema(required = true, schema_with = domain::schema::email)]
    pub email: Option<String>,
    /// Any role but `owner`.
    #[schema(required = true, schema_with = invitable_role_schema)]
    pub role: Option<String>,
}

impl InviteRequest {
    pub fn parse(self) -> Result<NewInvitation, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.required("name", self.name.as_deref(), PersonName::parse);
        let email = errors.required("email", self.email.as_deref(), Email::parse);
        let role = errors.required("role", self.role.as_deref(), Role::parse);
        match (name, email, role) {
            (Some(name), Some(email), Some(role)) => Ok(NewInvitation { name, email, role }),
            _ => Err(errors),
        }
    }
}

/// `POST /v1/sessions` and `POST /v1/invitations/accept` as read: one shape, so that a field
/// of the other route is named in a 422 rather than refused as unknown. Documented as
/// [`LoginRequest`] and [`AcceptInvitationRequest`].
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    pub email: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
}

impl CredentialsRequest {
    /// The body of a login.
    pub fn login(self) -> Result<Login, FieldErrors> {
        let mut errors = FieldErrors::new();
        if self.token.is_some() {
            errors.push("token", "is not part of a login; send email and password");
        }
        let email = errors.required("email", self.email.as_deref(), |raw| Ok::<_, String>(raw.to_owned()));
        let password = errors.required("password", self.password.as_deref(), |raw| Ok::<_, String>(raw.to_owned()));
        match (email, password) {
            (Some(email), Some(password)) if errors.is_empty() => Ok(Login { email, password }),
            _ => Err(errors),
        }
    }

    /// The body of an invitation's acceptance.
    pub fn acceptance(self) -> Result<InvitationAcceptance, FieldErrors> {
        let mut errors = FieldErrors::new();
        if self.email.is_some() {
            errors.push("email", "is not part of accepting an invitation; send token and password");
        }
        let token = errors.required("token", self.token.as_deref(), |raw| {
            BearerToken::parse(TokenKind::Invitation, raw.trim())
                .map_err(|_| "must be the esqi_… token from the invitation")
        });
        let password = errors.required("password", self.password.as_deref(), Password::parse);
        match (token, password) {
            (Some(token), Some(password)) if errors.is_empty() => Ok(InvitationAcceptance { token, password }),
            _ => Err(errors),
        }
    }
}

/// `POST /v1/sessions`, as documented (read as [`CredentialsRequest`]).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = domain::schema::email)]
    pub email: String,
    #[schema(schema_with = password_schema)]
    pub password: String,
}

/// `POST /v1/invitations/accept`, as documented (read as [`CredentialsRequest`]).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The invitation token (`esqi_…`).
    #[schema(schema_with = invitation_token_schema)]
    pub token: String,
    /// The password to set.
    #[schema(schema_with = password_schema)]
    pub password: String,
}

/// The body of `PATCH /v1/members/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// Any role but `owner`.
    #[schema(required = true, schema_with = invitable_role_schema)]
    role: Option<String>,
}

impl RoleRequest {
    pub fn parse(self) -> Result<Role, FieldErrors> {
        let mut errors = FieldErrors::new();
        errors.required("role", self.role.as_deref(), Role::parse).ok_or(errors)
    }
}

/// The body of `PUT /v1/roles/{role}/permissions`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionsRequest {
    /// Exactly what the role may do from now on; duplicates are folded.
    #[schema(required = true, schema_with = domain::schema::permissions_request)]
    permissions: Option<Vec<String>>,
}

impl PermissionsRequest {
    pub fn parse(self) -> Result<PermissionSet, FieldErrors> {
        let Some(names) = self.permissions else { return Err(FieldErrors::single("permissions", "is required")) };
        let mut errors = FieldErrors::new();
        errors.check_each("permissions", PermissionSet::parse(&names)).ok_or(errors)
    }
}

fn key_name_schema() -> ObjectBuilder {
    single_line(KeyName::MAX_CHARS).examples(["Intake sync"])
}

fn firm_name_schema() -> ObjectBuilder {
    single_line(FirmName::MAX_CHARS).examples(["Acme Law"])
}

fn person_name_schema() -> ObjectBuilder {
    single_line(PersonName::MAX_CHARS).examples(["Olivia Owner"])
}

/// A password as typed.
pub fn password_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(Password::MIN_CHARS))
        .max_length(Some(Password::MAX_CHARS))
}

pub(crate) fn invitation_token_schema() -> ObjectBuilder {
    bearer_token("esqi_")
}

/// The roles a member can be given by invitation or a role change: every role but `owner`.
fn invitable_role_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Role::ALL.into_iter().filter(|r| *r != Role::Owner).map(Role::as_str)))
}

/// A key's expiry as sent: a future date or time, or null.
fn expiry_schema() -> OneOfBuilder {
    let string =
        |format| ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)));
    OneOfBuilder::new()
        .item(string(KnownFormat::Date))
        .item(string(KnownFormat::DateTime))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .examples(["2027-03-01"])
}

/// An allowed-domains list as sent (normalized on the way in).
fn domains_update_schema() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String))
        .examples([serde_json::json!(["app.example.com", "*.example.com"])])
}

/// An allowed-domains list as sent, or null (any domain).
fn domains_request_schema() -> ArrayBuilder {
    domains_update_schema().schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-03T12:00:00Z".parse().expect("a time")
    }

    #[test]
    fn a_key_request_reports_every_failing_field_at_once() {
        let request = CreateApiKeyRequest {
            name: None,
            scopes: Some(vec!["contacts:read".into(), "nonsense".into()]),
            expires_at: Some("2020-01-01".into()),
            allowed_domains: Some(vec!["exa mple.com".into()]),
            rate_limit: Some(RateLimitRequest { limit: Some(serde_json::json!(0)), window_seconds: None }),
        };
        let errors = request.parse(FirmTimeZone::default(), now()).err().expect("refused");
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["name", "scopes", "expires_at", "allowed_domains", "rate_limit.limit", "rate_limit.window_seconds"]
        );
    }

    #[test]
    fn a_rate_limit_is_two_whole_numbers_in_range_and_60_point_0_is_60() {
        let limit = |limit: serde_json::Value, window: serde_json::Value| {
            let mut errors = FieldErrors::new();
            let parsed = RateLimitRequest { limit: Some(limit), window_seconds: Some(window) }.parse(&mut errors);
            (parsed, errors.0.into_iter().map(|e| e.field).collect::<Vec<_>>())
        };
        use serde_json::json;
        assert_eq!(limit(json!(100), json!(60.0)), (RateLimit::new(100, 60).ok(), vec![]));
        assert_eq!(limit(json!(1_000_001), json!(60)).1, ["rate_limit.limit"]);
        assert_eq!(limit(json!(10), json!(3601)).1, ["rate_limit.window_seconds"]);
        assert_eq!(limit(json!("100"), json!(1.5)).1, ["rate_limit.limit", "rate_limit.window_seconds"]);
        assert_eq!(limit(json!(-1), json!(null)).1, ["rate_limit.limit", "rate_limit.window_seconds"]);
    }

    #[test]
    fn a_rate_limit_edit_must_say_the_limit_or_null_to_remove_it() {
        let read = |body: &str| serde_json::from_str::<RateLimitUpdateRequest>(body).expect("a body").parse();
        assert_eq!(read(r#"{"rate_limit": null}"#), Ok(None));
        assert_eq!(read(r#"{"rate_limit": {"limit": 5, "window_seconds": 1}}"#), Ok(RateLimit::new(5, 1).ok()));
        let missing = read("{}").expect_err("refused");
        assert_eq!(missing.0[0].field, "rate_limit");
        let unknown = serde_json::from_str::<RateLimitUpdateRequest>(r#"{"rate_limit": {"limit": 5, "per": 1}}"#);
        assert!(unknown.is_err(), "an unknown field is a malformed body, as at the top level");
    }

    #[test]
    fn a_key_request_without_expiry_or_domains_is_a_key_that_never_expires_and_works_anywhere() {
        let request = CreateApiKeyRequest {
            name: Some("  Intake sync ".into()),
            scopes: Some(vec!["contacts:read".into()]),
            expires_at: None,
            allowed_domains: None,
            rate_limit: None,
        };
        let key = request.parse(FirmTimeZone::default(), now()).expect("accepted");
        assert_eq!(key.name.as_str(), "Intake sync");
        assert_eq!(key.expires_at, None);
        assert!(key.allowed_domains.is_any());
        assert_eq!(key.rate_limit, None);
    }

    #[test]
    fn a_domains_edit_must_say_the_list_even_when_it_is_empty() {
        let missing = AllowedDomainsRequest { allowed_domains: None }.parse().expect_err("refused");
        assert_eq!(missing.0[0].field, "allowed_domains");
        let empty = AllowedDomainsRequest { allowed_domains: Some(vec![]) }.parse().expect("accepted");
        assert!(empty.is_any());
    }

    #[test]
    fn a_login_that_sends_an_invitation_token_names_the_field_that_does_not_belong() {
        let request =
            CredentialsRequest { email: Some("a@b.test".into()), token: Some("x".into()), password: Some("p".into()) };
        let errors = request.login().err().expect("refused");
        assert_eq!(errors.0[0].field, "token");
    }

    #[test]
    fn a_signup_names_the_owner_fields_by_their_path() {
        let errors = SignupRequest { firm_name: Some("Acme Law".into()), time_zone: None, owner: None }
            .parse()
            .err()
            .expect("refused");
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["owner.name", "owner.email", "owner.password"]);
    }
}
