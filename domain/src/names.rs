//! Names and other short texts people type: parsed once, at the edge, into types that
//! cannot hold an invalid value.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a short text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Nothing but white space.
    #[error("is required")]
    Empty,
    /// Longer than allowed.
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// Shorter than allowed.
    #[error("must be at least {0} characters")]
    TooShort(usize),
    /// A control character (newline, tab, NUL...).
    #[error("must not contain control characters such as newlines or tabs")]
    ControlCharacter,
    /// Not an email address.
    #[error("must be an email address, like name@example.com")]
    NotAnEmail,
    /// Not an IANA time zone.
    #[error("'{0}' is not a time zone; use an IANA name such as America/New_York or UTC")]
    UnknownTimeZone(String),
}

/// Trims `raw` and checks it is 1..=`max` characters with no control characters: the rule of
/// every short text people type.
pub fn single_line(raw: &str, max: usize) -> Result<String, TextError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty);
    }
    if trimmed.chars().count() > max {
        return Err(TextError::TooLong(max));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    Ok(trimmed.to_owned())
}

macro_rules! single_line_name {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The longest value allowed, in characters.
            pub const MAX_CHARS: usize = $max;

            /// Trims and checks the value: 1 to `MAX_CHARS` characters, no control characters.
            pub fn parse(raw: &str) -> Result<Self, TextError> {
                single_line(raw, Self::MAX_CHARS).map(Self)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

single_line_name!(
    /// The label a firm gives an API key ("Intake sync").
    KeyName,
    100
);
single_line_name!(
    /// A member's name as shown to their firm.
    PersonName,
    100
);
single_line_name!(
    /// A firm's name.
    FirmName,
    200
);

/// An email address, lower-cased: unique across the service, compared without case.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases and checks the shape `local@domain.tld` (no spaces, at most 254).
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let value = raw.trim().to_lowercase();
        if value.is_empty() {
            return Err(TextError::Empty);
        }
        if value.len() > 254 {
            return Err(TextError::TooLong(254));
        }
        let (local, domain) = value.split_once('@').ok_or(TextError::NotAnEmail)?;
        let well_formed = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if well_formed {
            Ok(Email(value))
        } else {
            Err(TextError::NotAnEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A password as typed: 12 to 1024 characters. Never logged, never stored (only its hash).
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The shortest password allowed.
    pub const MIN_CHARS: usize = 12;
    /// The longest password allowed (hashing cost grows with length).
    pub const MAX_CHARS: usize = 1024;

    /// Checks the length; passwords are not trimmed (spaces are characters like any other).
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(TextError::TooShort(Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err(TextError::TooLong(Self::MAX_CHARS));
        }
        Ok(Password(raw.to_owned()))
    }

    /// The password, for hashing or verifying.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// A firm's IANA time zone: a bare expiry date is midnight there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FirmTimeZone(chrono_tz::Tz);

impl FirmTimeZone {
    /// Parses an IANA name (`America/New_York`, `UTC`).
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        chrono_tz::Tz::from_str(raw.trim())
            .map(FirmTimeZone)
            .map_err(|_| TextError::UnknownTimeZone(raw.trim().to_owned()))
    }

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    /// The IANA name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Default for FirmTimeZone {
    fn default() -> Self {
        FirmTimeZone(chrono_tz::Tz::UTC)
    }
}

impl Serialize for FirmTimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for FirmTimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_key_name_is_trimmed() {
        assert_eq!(KeyName::parse("  Intake sync \t").map(|n| n.as_str().to_owned()), Ok("Intake sync".into()));
    }

    #[test]
    fn a_blank_key_name_is_required() {
        assert_eq!(KeyName::parse("   "), Err(TextError::Empty));
    }

    #[test]
    fn a_key_name_of_100_characters_is_accepted_and_101_is_not() {
        assert!(KeyName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(KeyName::parse(&"é".repeat(101)), Err(TextError::TooLong(100)));
    }

    #[test]
    fn a_key_name_with_a_newline_inside_is_refused() {
        assert_eq!(KeyName::parse("Intake\nsync"), Err(TextError::ControlCharacter));
    }

    #[test]
    fn emails_are_lower_cased_and_need_a_domain() {
        assert_eq!(Email::parse(" Olivia@Acme.TEST ").map(|e| e.as_str().to_owned()), Ok("olivia@acme.test".into()));
        assert_eq!(Email::parse("olivia"), Err(TextError::NotAnEmail));
        assert_eq!(Email::parse("olivia@acme"), Err(TextError::NotAnEmail));
        assert_eq!(Email::parse("o livia@acme.test"), Err(TextError::NotAnEmail));
    }

    #[test]
    fn a_password_needs_twelve_characters() {
        assert_eq!(Password::parse("short").err(), Some(TextError::TooShort(12)));
        assert!(Password::parse("correct horse battery").is_ok());
        assert_eq!(format!("{:?}", Password::parse("correct horse battery")), "Ok(Password(…))");
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(FirmTimeZone::parse("America/New_York").map(FirmTimeZone::name), Ok("America/New_York"));
        assert!(FirmTimeZone::parse("Mars/Olympus").is_err());
    }

    proptest! {
        #[test]
        fn a_parsed_key_name_parses_to_itself(raw in "\\PC{0,120}") {
            if let Ok(name) = KeyName::parse(&raw) {
                prop_assert_eq!(KeyName::parse(name.as_str()), Ok(name.clone()));
                prop_assert!(name.as_str().chars().count() <= 100);
            }
        }
    }
}
