//! The Canton Integration DB: schema, migrations, typed queries and the ingestion progress channel.
