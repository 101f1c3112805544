DROP TABLE app.notifications;
DROP TABLE app.channels;
