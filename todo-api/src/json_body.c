#include "json_body.h"

#include "errors.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

static int refuse(struct todo_body_error *err, int status, const char *error, const char *field,
                  const char *message) {
  err->status = status;
  err->error = error;
  err->field = field;
  snprintf(err->message, sizeof(err->message), "%s", message);
  return TODO_ERR_INVALID;
}

/* Fields a client may send back from a GET; they are read-only and ignored. */
static bool read_only_field(const char *key) {
  return strcmp(key, "id") == 0 || strcmp(key, "created_at") == 0 || strcmp(key, "updated_at") == 0;
}

static int check_title(json_t *v, struct todo_fields *f, struct todo_body_error *err) {
  if (!json_is_string(v)) {
    return refuse(err, 422, "validation_error", "title", "title must be a string");
  }
  const char *s = json_string_value(v);
  size_t bytes = json_string_length(v);
  long chars = todo_utf8_count(s, bytes);
  if (chars < 0) {
    return refuse(err, 422, "validation_error", "title", "title must be valid UTF-8 text");
  }
  if (chars < 1 || todo_is_blank(s)) {
    return refuse(err, 422, "validation_error", "title", "title must not be empty");
  }
  if (chars > TODO_TITLE_MAX_CHARS) {
    return refuse(err, 422, "validation_error", "title",
                  "title must be at most 200 characters long");
  }
  f->has_title = true;
  f->title = s;
  return 0;
}

static int check_description(json_t *v, struct todo_fields *f, struct todo_body_error *err) {
  if (json_is_null(v)) {
    f->has_description = true;
    f->description = NULL;
    return 0;
  }
  if (!json_is_string(v)) {
    return refuse(err, 422, "validation_error", "description",
                  "description must be a string or null");
  }
  if (todo_utf8_count(json_string_value(v), json_string_length(v)) < 0) {
    return refuse(err, 422, "validation_error", "description",
                  "description must be valid UTF-8 text");
  }
  f->has_description = true;
  f->description = json_string_value(v);
  return 0;
}

static int check_completed(json_t *v, struct todo_fields *f, struct todo_body_error *err) {
  if (!json_is_boolean(v)) {
    return refuse(err, 422, "validation_error", "completed", "completed must be true or false");
  }
  f->has_completed = true;
  f->completed = json_is_true(v);
  return 0;
}

int todo_body_parse(const char *body, size_t len, enum todo_body_mode mode, json_t **root,
                    struct todo_fields *f, struct todo_body_error *err) {
  json_error_t jerr;
  json_t *doc = NULL;
  int rc;
  memset(f, 0, sizeof(*f));
  memset(err, 0, sizeof(*err));
  /* Duplicate keys are refused: which of two titles would the user mean? jansson also refuses
   * invalid UTF-8 and \u0000, which PostgreSQL text could not hold. */
  doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!doc) {
    if (json_error_code(&jerr) == json_error_out_of_memory) {
      return TODO_ERR_NOMEM;
    }
    if (json_error_code(&jerr) == json_error_invalid_utf8) {
      return refuse(err, 400, "malformed_json", NULL, "the body is not valid UTF-8");
    }
    char msg[200];
    snprintf(msg, sizeof(msg), "malformed JSON at line %d, column %d: %.120s", jerr.line,
             jerr.column, jerr.text);
    return refuse(err, 400, "malformed_json", NULL, msg);
  }
  if (!json_is_object(doc)) {
    rc = refuse(err, 422, "validation_error", NULL, "the body must be a JSON object");
    goto fail;
  }
  const char *key;
  json_t *value;
  json_object_foreach(doc, key, value) {
    if (strcmp(key, "title") == 0) {
      rc = check_title(value, f, err);
    } else if (strcmp(key, "description") == 0) {
      rc = check_description(value, f, err);
    } else if (strcmp(key, "completed") == 0) {
      rc = check_completed(value, f, err);
    } else if (read_only_field(key)) {
      rc = 0;
    } else {
      /* An unknown field is most likely a typo ("complete"): silently ignoring it would
       * report success for a change that did not happen. */
      char msg[200];
      snprintf(msg, sizeof(msg), "unknown field \"%.100s\"", key);
      rc = refuse(err, 422, "validation_error", NULL, msg);
    }
    if (rc != 0) {
      goto fail;
    }
  }
  if (mode != TODO_BODY_PATCH) {
    if (!f->has_title) {
      rc = refuse(err, 422, "validation_error", "title", "title is required");
      goto fail;
    }
    /* Absent optional fields take their defaults, so that PUT replaces the whole todo. */
    f->has_description = true;
    f->has_completed = true;
  }
  *root = doc;
  return 0;
fail:
  json_decref(doc);
  memset(f, 0, sizeof(*f));
  return rc;
}

json_t *todo_item_to_json(const struct todo_item *item) {
  json_t *o = json_object();
  if (!o) {
    return NULL;
  }
  if (json_object_set_new(o, "id", json_string(item->id)) != 0 ||
      json_object_set_new(o, "title", json_string(item->title)) != 0 ||
      json_object_set_new(o, "description",
                          item->description ? json_string(item->description) : json_null()) != 0 ||
      json_object_set_new(o, "completed", json_boolean(item->completed)) != 0 ||
      json_object_set_new(o, "created_at", json_string(item->created_at)) != 0 ||
      json_object_set_new(o, "updated_at", json_string(item->updated_at)) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}
