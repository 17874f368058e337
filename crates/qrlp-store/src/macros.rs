//! The two macros that let one piece of query code serve both backends.

/// Runs `$body` with `$pool` bound to the concrete pool (and `$d` to the backend's
/// [`crate::sql::Dialect`]). The body is compiled once per backend, so the same query code
/// serves both while every value stays natively typed.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $d:ident| $body:expr) => {
        match &$store.inner.backend {
            $crate::Backend::Sqlite($pool) => {
                let $d = &$crate::sql::SQLITE;
                $body
            }
            $crate::Backend::Postgres($pool) => {
                let $d = &$crate::sql::POSTGRES;
                $body
            }
        }
    };
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.inner.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}

/// Inserts one audit record (`$entry: &AuditEntry`) on `$conn`: the transaction of the
/// change for every audited mutation.
macro_rules! insert_audit {
    ($conn:expr, $entry:expr) => {{
        let e: &$crate::audit::AuditEntry<'_> = $entry;
        sqlx::query($crate::sql::INSERT_AUDIT)
            .bind(::uuid::Uuid::now_v7())
            .bind(e.org_id)
            .bind(e.ctx.actor.type_str())
            .bind(e.ctx.actor.id())
            .bind(e.action)
            .bind(e.target_type)
            .bind(e.target_id.as_deref())
            .bind(e.ctx.ip.as_deref())
            .bind(
                e.ctx
                    .user_agent
                    .as_deref()
                    .map($crate::audit::cut_user_agent),
            )
            .bind(e.ctx.request_id.as_deref())
            .bind(::sqlx::types::Json(&e.details))
            .bind($crate::db::Ts(e.at))
            .execute($conn)
            .await
            .map(drop)
    }};
}

/// Inserts an API key row (`$key: &ApiKey`, `$hash: &[u8; 32]`) on `$conn`.
macro_rules! insert_api_key {
    ($conn:expr, $key:expr, $hash:expr) => {{
        let k: &$crate::model::ApiKey = $key;
        let hash: &[u8; 32] = $hash;
        sqlx::query($crate::sql::INSERT_API_KEY)
            .bind(k.id)
            .bind(k.org_id)
            .bind(&k.name)
            .bind(&k.prefix)
            .bind(&hash[..])
            .bind(::sqlx::types::Json(&k.scopes))
            .bind(k.created_by)
            .bind($crate::db::Ts(k.created_at))
            .bind(k.expires_at.map($crate::db::Ts))
            .execute($conn)
            .await
            .map(drop)
    }};
}

/// Writes one outbox event (`$payload: &qrlp_webhook::Payload`) of organization `$org`
/// (`Uuid`) at `$at` (`OffsetDateTime`) in `$tx`, the transaction of the change it
/// reports, and one pending delivery per active endpoint of the organization subscribed to
/// its type (by name, or by `*` unless the type is a chatty one). Evaluates to `Result<Uuid, sqlx::Error>`: the event id (the `webhook-id`).
/// `$tx` is the transaction variable (a `sqlx::Transaction`).
macro_rules! enqueue_event {
    ($tx:ident, $org:expr, $payload:expr, $at:expr) => {{
        let payload: &::qrlp_webhook::Payload = $payload;
        let org: ::uuid::Uuid = $org;
        let at = $crate::db::Ts($at);
        let id = ::uuid::Uuid::now_v7();
        let in_one = $crate::webhooks::enqueue_in_one(&*$tx);
        if let Some(sql) = in_one {
            sqlx::query(sql)
                .bind(id)
                .bind(org)
                .bind(payload.event())
                .bind(payload.to_json())
                .bind(at)
                .bind(::qrlp_webhook::catalogue::in_wildcard(payload.event()))
                .execute(&mut *$tx)
                .await
                .map(|_| id)
        } else {
            let inserted = sqlx::query($crate::webhooks::INSERT_EVENT)
                .bind(id)
                .bind(org)
                .bind(payload.event())
                .bind(payload.to_json())
                .bind(at)
                .execute(&mut *$tx)
                .await;
            match inserted {
                Err(e) => Err(e),
                Ok(_) => sqlx::query($crate::webhooks::FAN_OUT)
                    .bind(id)
                    .bind(org)
                    .bind(at)
                    .bind(payload.event())
                    .bind(::qrlp_webhook::catalogue::in_wildcard(payload.event()))
                    .execute(&mut *$tx)
                    .await
                    .map(|_| id),
            }
        }
    }};
}

/// The scans of `$codes` (a slice of ids, at most 500) made after the roll-up mark,
/// read in transaction `$tx`: what the roll-up tables do not hold yet.
macro_rules! read_tail {
    ($tx:ident, $codes:expr) => {{
        let codes: &[::uuid::Uuid] = $codes;
        let mark: Option<$crate::db::Ts> =
            sqlx::query_scalar("SELECT through FROM qr_scan_rollup WHERE id = 1")
                .fetch_one(&mut *$tx)
                .await?;
        match mark {
            Some(mark) if !codes.is_empty() => {
                let mut q = sqlx::QueryBuilder::new($crate::scans::TAIL_COLS);
                q.push(" WHERE scanned_at > ").push_bind(mark);
                q.push(" AND qr_code_id IN (");
                let mut list = q.separated(", ");
                for code in codes {
                    list.push_bind(*code);
                }
                q.push(")");
                let rows: Vec<$crate::scans::TailRow> =
                    q.build_query_as().fetch_all(&mut *$tx).await?;
                rows
            }
            _ => Vec::new(),
        }
    }};
}
