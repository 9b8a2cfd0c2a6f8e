// One portable schema for both backends: text, bigint, integer, bool; JSON kept as text;
// times as unix milliseconds.

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        rate_limit_per_minute -> Integer,
        created_at -> BigInt,
        max_endpoints -> Nullable<Integer>,
        max_streams -> Nullable<Integer>,
        retention_events_ms -> Nullable<BigInt>,
        purged_through_seq -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        org_id -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    event_types (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        json_schema -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    event_type_versions (type_id, version) {
        type_id -> Text,
        version -> Integer,
        json_schema -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    events (seq) {
        seq -> BigInt,
        id -> Text,
        org_id -> Text,
        event_type -> Text,
        payload -> Text,
        correlation_id -> Nullable<Text>,
        source_id -> Nullable<Text>,
        created_at -> BigInt,
        version -> Integer,
    }
}

diesel::table! {
    endpoints (id) {
        id -> Text,
        org_id -> Text,
        url -> Text,
        description -> Nullable<Text>,
        event_filter -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        signature_scheme -> Text,
        status -> Text,
        rate_limit_per_second -> Nullable<Integer>,
        max_in_flight -> Nullable<Integer>,
        headers -> Text,
        circuit_state -> Text,
        consecutive_failures -> Integer,
        circuit_open_until -> Nullable<BigInt>,
        last_success_at -> Nullable<BigInt>,
        failing_since -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        version -> BigInt,
        payload_filter -> Nullable<Text>,
        versions -> Nullable<Text>,
        ordering -> Text,
    }
}

diesel::table! {
    endpoint_owners (endpoint_id) {
        endpoint_id -> Text,
        owner -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        org_id -> Text,
        event_seq -> BigInt,
        endpoint_id -> Text,
        status -> Text,
        attempt_count -> Integer,
        retry_base -> Integer,
        next_attempt_at -> Nullable<BigInt>,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        first_attempt_at -> Nullable<BigInt>,
        last_attempt_at -> Nullable<BigInt>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    delivery_attempts (id) {
        id -> BigInt,
        delivery_id -> Text,
        attempt -> Integer,
        started_at -> BigInt,
        duration_ms -> BigInt,
        status_code -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    sources (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        kind -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        event_type_prefix -> Text,
        created_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    receipts (id) {
        id -> Text,
        source_id -> Text,
        org_id -> Text,
        received_at -> BigInt,
        provider_event_id -> Nullable<Text>,
        verified -> Bool,
        duplicate -> Bool,
        error -> Nullable<Text>,
        event_id -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (org_id, idem_key) {
        org_id -> Text,
        idem_key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        org_id -> Text,
        api_key_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    stream_tokens (token_hash) {
        token_hash -> Text,
        org_id -> Text,
        types -> Nullable<Text>,
        expires_at -> BigInt,
        api_key_id -> Nullable<Text>,
    }
}

diesel::table! {
    nodes (id) {
        id -> Text,
        started_at -> BigInt,
        last_seen -> BigInt,
    }
}

diesel::joinable!(api_keys -> organizations (org_id));
diesel::joinable!(event_type_versions -> event_types (type_id));
diesel::joinable!(deliveries -> endpoints (endpoint_id));
diesel::joinable!(deliveries -> events (event_seq));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    api_keys,
    event_types,
    event_type_versions,
    events,
    endpoints,
    endpoint_owners,
    deliveries,
    delivery_attempts,
    sources,
    receipts,
    idempotency_keys,
    sessions,
    stream_tokens,
    nodes,
);
