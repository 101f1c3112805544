DROP VIEW bi.alert_events, bi.alerts;
