-- wrk script: POST a new todo on every request.
wrk.method = "POST"
wrk.body = '{"title":"benchmark todo","description":"created by wrk","completed":false}'
wrk.headers["Content-Type"] = "application/json"
