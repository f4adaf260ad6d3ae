#include "errors.h"

const char *todo_strerror(int err) {
  switch (err) {
  case TODO_OK:
    return "ok";
  case TODO_ERR_NOMEM:
    return "out of memory";
  case TODO_ERR_INVALID:
    return "invalid input";
  case TODO_ERR_NOT_FOUND:
    return "not found";
  case TODO_ERR_UNAVAILABLE:
    return "database unavailable";
  case TODO_ERR_DB:
    return "database error";
  case TODO_ERR_IO:
    return "input/output error";
  }
  return "unknown error";
}
