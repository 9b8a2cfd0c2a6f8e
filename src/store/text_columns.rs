//! The string-set enums (`crate::domain`, the circuit state) as `Text` columns on both
//! backends and through `DbConn`'s multi-backend, so models hold the enums and queries
//! compare against them. Unknown text in a row is a deserialisation error.
//!
//! The signature scheme is the exception: its enum belongs to the client crate, so diesel's
//! traits cannot be implemented for it here (the orphan rule); endpoints keep it as text and
//! `Endpoint::scheme()` parses it.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use std::io::Write;

use super::DbBackend;
use crate::delivery::circuit::CircuitState;
use crate::domain::{DeliveryOrder, DeliveryStatus, EndpointStatus, SourceKind};

macro_rules! text_column {
    ($($ty:ident),+ $(,)?) => {$(
        const _: () = {
            // Expressions, `Nullable` and `Queryable` for the enum, as diesel derives them.
            #[derive(diesel::AsExpression, diesel::FromSqlRow)]
            #[diesel(foreign_derive, sql_type = Text)]
            #[allow(dead_code)]
            struct Column($ty);
        };

        impl ToSql<Text, Pg> for $ty {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl ToSql<Text, Sqlite> for $ty {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                out.set_value(self.as_str());
                Ok(IsNull::No)
            }
        }

        impl ToSql<Text, DbBackend> for $ty {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DbBackend>) -> serialize::Result {
                out.set_value((Text, self));
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $ty {
            fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                parse(&<String as FromSql<Text, Pg>>::from_sql(bytes)?, $ty::parse)
            }
        }

        impl FromSql<Text, Sqlite> for $ty {
            fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                parse(&<String as FromSql<Text, Sqlite>>::from_sql(bytes)?, $ty::parse)
            }
        }

        impl FromSql<Text, DbBackend> for $ty {
            fn from_sql(bytes: <DbBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                bytes.from_sql::<Self, Text>()
            }
        }
    )+};
}

text_column!(DeliveryStatus, EndpointStatus, DeliveryOrder, SourceKind, CircuitState);

fn parse<T>(text: &str, parse: fn(&str) -> Option<T>) -> deserialize::Result<T> {
    parse(text).ok_or_else(|| format!("unexpected value {text:?} in a text column").into())
}
