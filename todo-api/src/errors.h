/* Error codes of the Todo API: functions return 0 or one of these (negative). */
#ifndef TODO_ERRORS_H
#define TODO_ERRORS_H

enum {
  TODO_OK = 0,
  TODO_ERR_NOMEM = -1,       /* out of memory */
  TODO_ERR_INVALID = -2,     /* bad input or configuration */
  TODO_ERR_NOT_FOUND = -3,   /* no such row or file */
  TODO_ERR_UNAVAILABLE = -4, /* the database cannot be reached, or the pool is exhausted */
  TODO_ERR_DB = -5,          /* the database refused a statement */
  TODO_ERR_IO = -6,          /* a file or socket operation failed */
};

/* A static description of err. */
const char *todo_strerror(int err);

#endif
