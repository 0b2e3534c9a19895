//! The shadow tables a rebuild fills (`esqase_rebuild.<table>`): made like the live tables,
//! completed with everything else the live tables carry just before the swap, then moved into
//! the live schema in place of the old tables.
//!
//! Everything is copied from the catalog, not written down here, so a migration that adds a
//! column, an index or a constraint to a projection's table needs no change in this file.

use sqlx::PgConnection;

/// The schema the shadow tables live in (made by a migration).
pub(super) const SCHEMA: &str = "esqase_rebuild";

/// `name` as a quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn live_table(live: &str, table: &str) -> String {
    format!("{}.{}", ident(live), ident(table))
}

fn shadow_table(table: &str) -> String {
    format!("{}.{}", ident(SCHEMA), ident(table))
}

/// The schema of the live table `table`, as the connection's search path finds it.
pub(super) async fn live_schema(conn: &mut PgConnection, table: &str) -> Result<String, sqlx::Error> {
    let schema: Option<String> = sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
    )
    .bind(ident(table))
    .fetch_optional(&mut *conn)
    .await?;
    schema.ok_or_else(|| sqlx::Error::Protocol(format!("table {table} does not exist (are the migrations applied?)")))
}

/// A table's columns as text (name, type, not null, default), or `None` if it does not exist.
async fn columns(conn: &mut PgConnection, qualified: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
           FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(qualified)
    .fetch_one(conn)
    .await
}

/// True when every shadow table exists with exactly the live table's columns: a partial
/// rebuild made before a migration changed a table cannot be carried on.
pub(super) async fn match_live(conn: &mut PgConnection, live: &str, tables: &[&str]) -> Result<bool, sqlx::Error> {
    for table in tables {
        let shadow = columns(conn, &shadow_table(table)).await?;
        if shadow.is_none() || shadow != columns(conn, &live_table(live, table)).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Refuses tables that carry what a swap would lose: triggers, row-level security or policies.
async fn check_swappable(conn: &mut PgConnection, live: &str, tables: &[&str]) -> Result<(), sqlx::Error> {
    for table in tables {
        let extra: bool = sqlx::query_scalar(
            "SELECT c.relrowsecurity
                 OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
                 OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
               FROM pg_class c WHERE c.oid = to_regclass($1)",
        )
        .bind(live_table(live, table))
        .fetch_one(&mut *conn)
        .await?;
        if extra {
            return Err(sqlx::Error::Protocol(format!(
                "table {table} has triggers, row-level security or policies, which a rebuild would not carry over"
            )));
        }
    }
    Ok(())
}

/// Drops whatever there is of the shadow tables (in a transaction of its caller's).
pub(super) async fn drop_all(conn: &mut PgConnection, tables: &[&str]) -> Result<(), sqlx::Error> {
    // Without this, Postgres sends a notice for each table that is not there, which the
    // client logs: the usual case, not news.
    sqlx::query("SET LOCAL client_min_messages = warning").execute(&mut *conn).await?;
    let list = tables.iter().map(|t| shadow_table(t)).collect::<Vec<_>>().join(", ");
    sqlx::query(&format!("DROP TABLE IF EXISTS {list}")).execute(conn).await?;
    Ok(())
}

/// Makes empty shadow tables like the live ones: columns, defaults, check constraints,
/// storage and comments, and the primary key (what the fold's writes need). The other indexes,
/// unique constraints and foreign keys come in [`complete`], once the rows are in: building an
/// index once is cheaper than keeping it up to date through every chunk's writes.
pub(super) async fn create(conn: &mut PgConnection, live: &str, tables: &[&str]) -> Result<(), sqlx::Error> {
    check_swappable(conn, live, tables).await?;
    for table in tables {
        sqlx::query(&format!(
            "CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING INDEXES)",
            shadow_table(table),
            live_table(live, table)
        ))
        .execute(&mut *conn)
        .await?;
        add_constraints(conn, live, table, "p").await?;
    }
    Ok(())
}

/// Adds to the shadow of `table` the live table's constraints of the kinds in `kinds`
/// (`pg_constraint.contype`) that it lacks, under the same names.
async fn add_constraints(conn: &mut PgConnection, live: &str, table: &str, kinds: &str) -> Result<(), sqlx::Error> {
    let missing: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conname::text, pg_get_constraintdef(c.oid)
           FROM pg_constraint c
          WHERE c.conrelid = to_regclass($1) AND strpos($3, c.contype::text) > 0
            AND NOT EXISTS (SELECT 1 FROM pg_constraint s WHERE s.conrelid = to_regclass($2) AND s.conname = c.conname)
          ORDER BY c.conname",
    )
    .bind(live_table(live, table))
    .bind(shadow_table(table))
    .bind(kinds)
    .fetch_all(&mut *conn)
    .await?;
    for (name, definition) in missing {
        sqlx::query(&format!("ALTER TABLE {} ADD CONSTRAINT {} {definition}", shadow_table(table), ident(&name)))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Gives the shadow tables everything else the live tables carry: unique and exclusion
/// constraints, indexes (same names, same definitions), foreign keys (onto the shadow tables
/// where they point inside the projection), storage parameters, grants and owner; then gathers
/// their statistics, so the planner knows them from the first query after the swap. Whatever
/// is there already is left as it is, so a rebuild interrupted after this step can run it again.
pub(super) async fn complete(conn: &mut PgConnection, live: &str, tables: &[&str]) -> Result<(), sqlx::Error> {
    check_swappable(conn, live, tables).await?;
    for table in tables {
        add_constraints(conn, live, table, "ux").await?;
        let indexes: Vec<(String, bool, String)> = sqlx::query_as(
            "SELECT i.relname::text, x.indisunique, pg_get_indexdef(x.indexrelid)
               FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
              WHERE x.indrelid = to_regclass($1)
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid)
              ORDER BY i.relname",
        )
        .bind(live_table(live, table))
        .fetch_all(&mut *conn)
        .await?;
        for (name, unique, definition) in indexes {
            // `CREATE [UNIQUE] INDEX name ON schema.table USING method (…) [WHERE …]`: keep
            // everything from the access method on.
            let method = definition.split_once(" USING ").map(|(_, rest)| rest).ok_or_else(|| {
                sqlx::Error::Protocol(format!("cannot read the definition of index {name}: {definition}"))
            })?;
            let unique = if unique { "UNIQUE " } else { "" };
            sqlx::query(&format!(
                "CREATE {unique}INDEX IF NOT EXISTS {} ON {} USING {method}",
                ident(&name),
                shadow_table(table)
            ))
            .execute(&mut *conn)
            .await?;
        }
    }
    // A foreign key's definition names the table it references as the search path finds it:
    // read with the live schema alone (`firms(id)`), then added with the shadow schema first,
    // the same name finds the shadow table if the projection has one, else the live table.
    sqlx::query(&format!("SET LOCAL search_path = {}", ident(live))).execute(&mut *conn).await?;
    let mut foreign_keys = Vec::new();
    for table in tables {
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.conname::text, pg_get_constraintdef(c.oid)
               FROM pg_constraint c
              WHERE c.conrelid = to_regclass($1) AND c.contype = 'f'
                AND NOT EXISTS (SELECT 1 FROM pg_constraint s WHERE s.conrelid = to_regclass($2) AND s.conname = c.conname)
              ORDER BY c.conname",
        )
        .bind(live_table(live, table))
        .bind(shadow_table(table))
        .fetch_all(&mut *conn)
        .await?;
        foreign_keys.extend(keys.into_iter().map(|(name, definition)| (*table, name, definition)));
    }
    sqlx::query(&format!("SET LOCAL search_path = {}, {}", ident(SCHEMA), ident(live))).execute(&mut *conn).await?;
    for (table, name, definition) in foreign_keys {
        sqlx::query(&format!("ALTER TABLE {} ADD CONSTRAINT {} {definition}", shadow_table(table), ident(&name)))
            .execute(&mut *conn)
            .await?;
    }
    for table in tables {
        copy_settings(conn, live, table).await?;
        sqlx::query(&format!("ANALYZE {}", shadow_table(table))).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Storage parameters, table grants and owner, from the live table to its shadow.
async fn copy_settings(conn: &mut PgConnection, live: &str, table: &str) -> Result<(), sqlx::Error> {
    let shadow = shadow_table(table);
    let (options, owner): (Option<Vec<String>>, String) =
        sqlx::query_as("SELECT reloptions, relowner::regrole::text FROM pg_class WHERE oid = to_regclass($1)")
            .bind(live_table(live, table))
            .fetch_one(&mut *conn)
            .await?;
    if let Some(options) = options.filter(|o| !o.is_empty()) {
        sqlx::query(&format!("ALTER TABLE {shadow} SET ({})", options.join(", "))).execute(&mut *conn).await?;
    }
    // The owner's own rights come with ownership; grants to others (PUBLIC is grantee 0) are
    // made again, with their grant option.
    let grants: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type, a.is_grantable
           FROM pg_class c, aclexplode(c.relacl) a
          WHERE c.oid = to_regclass($1) AND a.grantee <> c.relowner",
    )
    .bind(live_table(live, table))
    .fetch_all(&mut *conn)
    .await?;
    for (grantee, privilege, grantable) in grants {
        let option = if grantable { " WITH GRANT OPTION" } else { "" };
        // `regrole::text` is quoted as an identifier already.
        sqlx::query(&format!("GRANT {privilege} ON {shadow} TO {grantee}{option}")).execute(&mut *conn).await?;
    }
    let shadow_owner: String =
        sqlx::query_scalar("SELECT relowner::regrole::text FROM pg_class WHERE oid = to_regclass($1)")
            .bind(&shadow)
            .fetch_one(&mut *conn)
            .await?;
    if shadow_owner != owner {
        sqlx::query(&format!("ALTER TABLE {shadow} OWNER TO {owner}")).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Drops the live tables and moves the shadow tables into their place, names, indexes and
/// constraints included. The caller holds every lock this needs, in one transaction.
pub(super) async fn swap(conn: &mut PgConnection, live: &str, tables: &[&str]) -> Result<(), sqlx::Error> {
    // One statement for all: the tables reference one another. Anything outside the projection
    // that depends on them makes it fail (and the transaction roll back) rather than vanish.
    let list = tables.iter().map(|t| live_table(live, t)).collect::<Vec<_>>().join(", ");
    sqlx::query(&format!("DROP TABLE {list}")).execute(&mut *conn).await?;
    for table in tables {
        sqlx::query(&format!("ALTER TABLE {} SET SCHEMA {}", shadow_table(table), ident(live)))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Takes every table of the projection for the swap, waiting (within `lock_timeout`) for the
/// readers that are using them.
pub(super) async fn lock_live(conn: &mut PgConnection, live: &str, tables: &[&str]) -> Result<(), sqlx::Error> {
    let list = tables.iter().map(|t| live_table(live, t)).collect::<Vec<_>>().join(", ");
    sqlx::query(&format!("LOCK TABLE {list} IN ACCESS EXCLUSIVE MODE")).execute(conn).await?;
    Ok(())
}

/// Makes unqualified table names find the shadow tables first (and everything else, the log
/// included, in the live schema) for the rest of the transaction: the folds' own statements
/// then write the shadow tables.
pub(super) async fn use_shadow(conn: &mut PgConnection, live: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET LOCAL search_path = {}, {}", ident(SCHEMA), ident(live))).execute(conn).await?;
    Ok(())
}
