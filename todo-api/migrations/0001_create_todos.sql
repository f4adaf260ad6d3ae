-- The todos table and the index that serves the list order (newest first, id breaking ties).
-- Applied in a transaction by `todo-api migrate` (or at start-up) and recorded in
-- schema_migrations; never edit an applied migration, add the next numbered file instead.

CREATE TABLE todos (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    title       VARCHAR(200) NOT NULL CHECK (char_length(title) >= 1),
    description TEXT NULL,
    completed   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX todos_created_at_id_idx ON todos (created_at DESC, id);
