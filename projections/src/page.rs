//! Cursor pagination, newest first, with Previous and Next.

use base64::Engine;
use serde::Serialize;
use uuid::Uuid;

/// The default and largest page sizes.
pub const DEFAULT_LIMIT: i64 = 25;
/// The largest page size.
pub const MAX_LIMIT: i64 = 100;

/// Which way a cursor points from its boundary row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Older rows (the Next button).
    Older,
    /// Newer rows (the Previous button).
    Newer,
}

/// An opaque place in a list: a boundary id and a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Rows strictly beyond this id are shown.
    pub boundary: Uuid,
    pub direction: Direction,
}

/// A cursor that is not one this service made.
#[derive(Debug, thiserror::Error)]
#[error("the cursor is not valid; use a next_cursor or prev_cursor from a list response")]
pub struct BadCursor;

impl Cursor {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        let tag = match self.direction {
            Direction::Older => 'n',
            Direction::Newer => 'p',
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{tag}{}", self.boundary.simple()))
    }

    /// Parses the opaque text form.
    pub fn decode(raw: &str) -> Result<Self, BadCursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).map_err(|_| BadCursor)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| BadCursor)?;
        let direction = match text.chars().next() {
            Some('n') => Direction::Older,
            Some('p') => Direction::Newer,
            _ => return Err(BadCursor),
        };
        let boundary = Uuid::try_parse(&text[1..]).map_err(|_| BadCursor)?;
        Ok(Cursor { boundary, direction })
    }
}

/// What a list request asks for.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    /// 1..=100.
    pub limit: i64,
    /// Where to start; the newest rows when absent.
    pub cursor: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { limit: DEFAULT_LIMIT, cursor: None }
    }
}

/// One page of a list, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Older rows (the Next button), if any.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Newer rows (the Previous button), if any.
    #[schema(required = true)]
    pub prev_cursor: Option<String>,
}

impl PageRequest {
    /// The SQL condition and order for the rows of this page, over an id column `column`;
    /// `$n` is the placeholder the boundary binds to. Fetch `limit + 1` rows to learn whether
    /// there is more.
    pub fn sql(&self, column: &str, n: usize) -> (String, String) {
        match self.cursor {
            None => ("TRUE".into(), format!("{column} DESC")),
            Some(Cursor { direction: Direction::Older, .. }) => (format!("{column} < ${n}"), format!("{column} DESC")),
            Some(Cursor { direction: Direction::Newer, .. }) => (format!("{column} > ${n}"), format!("{column} ASC")),
        }
    }

    /// The boundary to bind (the nil id when there is no cursor; the condition ignores it).
    pub fn boundary(&self) -> Uuid {
        self.cursor.map_or(Uuid::nil(), |c| c.boundary)
    }

    /// Turns up to `limit + 1` fetched rows into a page, newest first, with its cursors.
    pub fn page<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> Page<T> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let newer_direction = matches!(self.cursor, Some(Cursor { direction: Direction::Newer, .. }));
        if newer_direction {
            rows.reverse();
        }
        let older = |row: &T| Cursor { boundary: id(row), direction: Direction::Older }.encode();
        let newer = |row: &T| Cursor { boundary: id(row), direction: Direction::Newer }.encode();
        let (has_older, has_newer) = match self.cursor {
            None => (more, false),
            Some(Cursor { direction: Direction::Older, .. }) => (more, true),
            Some(Cursor { direction: Direction::Newer, .. }) => (true, more),
        };
        let next_cursor = if has_older { rows.last().map(older) } else { None };
        let prev_cursor = if has_newer { rows.first().map(newer) } else { None };
        Page { data: rows, next_cursor, prev_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).rev().map(Uuid::from_u128).collect()
    }

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let cursor = Cursor { boundary: Uuid::from_u128(7), direction: Direction::Newer };
        assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        assert!(Cursor::decode("not a cursor").is_err());
        assert!(Cursor::decode("").is_err());
    }

    #[test]
    fn the_first_page_has_next_but_no_previous() {
        let request = PageRequest { limit: 2, cursor: None };
        let page = request.page(ids(3), |id| *id);
        assert_eq!(page.data, vec![Uuid::from_u128(3), Uuid::from_u128(2)]);
        assert!(page.next_cursor.is_some());
        assert!(page.prev_cursor.is_none());
    }

    #[test]
    fn a_page_reached_with_previous_is_shown_newest_first() {
        let request = PageRequest {
            limit: 2,
            cursor: Some(Cursor { boundary: Uuid::from_u128(1), direction: Direction::Newer }),
        };
        // Fetched ascending, beyond the boundary: 2, 3, 4 (one more than the limit).
        let page = request.page(vec![Uuid::from_u128(2), Uuid::from_u128(3), Uuid::from_u128(4)], |id| *id);
        assert_eq!(page.data, vec![Uuid::from_u128(3), Uuid::from_u128(2)]);
        assert!(page.next_cursor.is_some());
        assert!(page.prev_cursor.is_some());
    }

    #[test]
    fn the_last_page_has_no_next() {
        let request = PageRequest {
            limit: 2,
            cursor: Some(Cursor { boundary: Uuid::from_u128(3), direction: Direction::Older }),
        };
        let page = request.page(vec![Uuid::from_u128(2), Uuid::from_u128(1)], |id| *id);
        assert!(page.next_cursor.is_none());
        assert!(page.prev_cursor.is_some());
    }
}
