//! Placeholder: the accounts and roles a session may use (ListAccounts,
//! ListAccountRoles) arrive with `elhaz sso roles`.
