//! Filtered, cursor-paged listings (integrations, groups): a `WHERE` holding
//! only the filters a request gave, so each query is planned for what it asks
//! (a catch-all `$1 IS NULL OR column = $1` lets PostgreSQL settle on a
//! generic plan that ignores the column's index), and keyset paging by id.

use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

/// The conditions of one listing and their parameters, numbered in order.
#[derive(Default)]
pub(crate) struct Conditions {
    clauses: Vec<String>,
    params: Vec<Param>,
}

enum Param {
    Text(String),
    Int(i64),
}

impl Conditions {
    /// `clause`, with `?` where its one parameter goes.
    pub fn text(&mut self, clause: &str, value: &str) -> &mut Self {
        self.push(clause, Param::Text(value.to_string()))
    }

    /// `clause`, with `?` where its one parameter goes.
    pub fn int(&mut self, clause: &str, value: i64) -> &mut Self {
        self.push(clause, Param::Int(value))
    }

    /// `column` contains `needle`, in any case. Both sides are folded by the
    /// database, the same way (SQLite folds ASCII letters only).
    pub fn name_contains(&mut self, column: &str, needle: &str) -> &mut Self {
        let escaped = needle.replace('!', "!!").replace('%', "!%").replace('_', "!_");
        self.push(&format!("LOWER({column}) LIKE LOWER(?) ESCAPE '!'"), Param::Text(format!("%{escaped}%")))
    }

    /// The pair of `columns` is one of `pairs`.
    pub fn pair_in(&mut self, columns: (&str, &str), pairs: &[(String, String)]) -> &mut Self {
        let any = self.pairs_matched(columns, pairs);
        self.fixed(&any)
    }

    /// The pair of `columns` is none of `pairs`.
    pub fn pair_not_in(&mut self, columns: (&str, &str), pairs: &[(String, String)]) -> &mut Self {
        let any = self.pairs_matched(columns, pairs);
        self.fixed(&format!("NOT {any}"))
    }

    /// SQL: the pair of `columns` is one of `pairs` (a few: instance
    /// types), whose values become parameters.
    fn pairs_matched(&mut self, (a, b): (&str, &str), pairs: &[(String, String)]) -> String {
        let mut alternatives = vec!["1 = 0".to_string()];
        for (value_a, value_b) in pairs {
            self.params.push(Param::Text(value_a.clone()));
            self.params.push(Param::Text(value_b.clone()));
            let n = self.params.len();
            alternatives.push(format!("({a} = ${} AND {b} = ${n})", n - 1));
        }
        format!("({})", alternatives.join(" OR "))
    }

    /// A condition without a parameter.
    pub fn fixed(&mut self, clause: &str) -> &mut Self {
        self.clauses.push(clause.to_string());
        self
    }

    fn push(&mut self, clause: &str, param: Param) -> &mut Self {
        self.params.push(param);
        self.clauses.push(clause.replace('?', &format!("${}", self.params.len())));
        self
    }

    /// `SELECT {columns} FROM {table}` with these conditions, ids above
    /// `after`, by id, at most `limit` rows.
    pub fn page(
        mut self,
        columns: &str,
        table: &str,
        after: Option<i64>,
        limit: i64,
    ) -> Query<'static, Any, AnyArguments> {
        if let Some(after) = after {
            self.int("id > ?", after);
        }
        let limit_param = self.params.len() + 1;
        let conditions = if self.clauses.is_empty() { "1 = 1".to_string() } else { self.clauses.join(" AND ") };
        let sql = format!("SELECT {columns} FROM {table} WHERE {conditions} ORDER BY id LIMIT ${limit_param}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for param in self.params {
            query = match param {
                Param::Text(value) => query.bind(value),
                Param::Int(value) => query.bind(value),
            };
        }
        query.bind(limit)
    }
}
