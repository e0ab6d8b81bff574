//! Tenants: the `X-Bk-Tenant-Id` header picks a tenant's mailer (its own
//! default sender and user directory, over the one shared transport).
//!
//! No header, or an id no tenant is configured under (BlueKing sends `system`
//! or `default` when it is not multi-tenant), means the top-level settings.
//! An app limited to tenants (`[apps.NAME] tenants`) must name one of them.

use axum::http::HeaderMap;
use cmsi_mail::{Mailer, Transport};

use crate::Gateway;
use crate::auth::{AuthError, ShownCode};

/// The header BlueKing's multi-tenant clients name their tenant in.
pub(crate) const TENANT_HEADER: &str = "x-bk-tenant-id";

impl Gateway {
    /// Sends for tenant `name` (a request with `X-Bk-Tenant-Id: name`)
    /// through `mailer`: its default sender and user directory. Give it the
    /// gateway's transport, shared (an `Arc` of it in a `Box`): only the
    /// gateway's own mailer's transport is closed on shutdown.
    #[must_use]
    pub fn with_tenant(
        mut self,
        name: impl Into<String>,
        mailer: Mailer<Box<dyn Transport>>,
    ) -> Self {
        self.tenants.insert(name.into(), mailer);
        self
    }

    /// The mailer of `tenant`, or the top-level one.
    pub(crate) fn mailer_for(&self, tenant: Option<&str>) -> &Mailer<Box<dyn Transport>> {
        tenant
            .and_then(|name| self.tenants.get(name))
            .unwrap_or(&self.mailer)
    }

    /// The configured tenant a request from `app` sends for, `None` for the
    /// top-level settings; refused when the app is limited to other tenants.
    pub(crate) fn tenant(
        &self,
        app: &str,
        headers: &HeaderMap,
    ) -> Result<Option<String>, AuthError> {
        let named = headers
            .get(TENANT_HEADER)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned())
            .filter(|id| !id.is_empty());
        let configured = named
            .as_deref()
            .filter(|id| self.tenants.contains_key(*id))
            .map(str::to_owned);
        let Some(allowed) = self.apps.tenants_of(app) else {
            return Ok(configured);
        };
        match configured {
            Some(tenant) if allowed.contains(&tenant) => Ok(Some(tenant)),
            _ => Err(AuthError::Tenant {
                app: app.to_owned(),
                tenant: ShownCode::of(named.as_deref().unwrap_or("(none)")),
                allowed: if allowed.is_empty() {
                    "no tenant".to_owned()
                } else {
                    allowed.join(", ")
                },
            }),
        }
    }
}
