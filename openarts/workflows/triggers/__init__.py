"""What starts and follows workflow executions from outside a request: cron schedules, event
subscriptions (webhooks) and service packages (paid runs with a consumption limit)."""
