DROP TABLE app.stream_tickets;
