//! Field-level validation failures, collected so that a request learns every problem at once.

use serde::Serialize;

/// One failing field and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The request field, as named in the JSON body (`name`, `scopes`, `owner.email`).
    pub field: String,
    /// A sentence for the person who typed the value.
    pub message: String,
}

/// Every failing field of one request, in the order they were checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("{} field(s) failed validation", .0.len())]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// No failures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a failure of `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }

    /// Keeps the value of a parse, or records its error against `field`.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(e) => {
                self.push(field, e.to_string());
                None
            }
        }
    }

    /// [`FieldErrors::check`] for a field a request must send: "is required" when it is absent.
    pub fn required<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match value {
            Some(raw) => self.check(field, parse(raw)),
            None => {
                self.push(field, "is required");
                None
            }
        }
    }

    /// Keeps the value of a parse of a list, or records each of its errors against `field`.
    pub fn check_each<T, E: std::fmt::Display>(&mut self, field: &str, parsed: Result<T, Vec<E>>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(errors) => {
                errors.into_iter().for_each(|e| self.push(field, e.to_string()));
                None
            }
        }
    }

    /// True when nothing failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing failed, else these errors.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }

    /// A single failure, for rules checked on their own.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.push(field, message);
        errors
    }
}
