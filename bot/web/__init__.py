"""The public site: province and commune pages and the open data, served by `chungsuc serve`
beside the webhooks (server-rendered, no JavaScript, the chat's catalogs and formats)."""
