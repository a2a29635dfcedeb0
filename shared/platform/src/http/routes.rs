//! A function's routes, served at once and documented only when asked.
//!
//! aide documents a route where it is registered: `aide::axum::routing::get_with` runs every
//! extractor's and response's JSON Schema generation (schemars) there and then. A Lambda `main`
//! never reads that documentation, yet paid for it at every cold start (issue 17: most of the
//! milliseconds a function spent at init beyond the floor). So [`FunctionRouter`] keeps two
//! things per route: the plain axum route, which [`super::service`] serves, and a closure that
//! registers the same handler with aide, run by [`super::document`] (the OpenAPI document, the
//! route list) and nowhere else.

use aide::axum::ApiRouter;
use aide::axum::routing::ApiMethodRouter;
use aide::operation::OperationHandler;
use aide::transform::TransformOperation;
use aide::{OperationInput, OperationOutput};
use axum::handler::Handler;
use axum::routing::MethodRouter;

use crate::App;

/// Registers something with aide, later.
type Deferred<R> = Box<dyn FnOnce(R) -> R + Send>;

/// A function's routes: what each HTTP function's `router()` returns. Serve it (its axum router
/// is `From` it) or document it ([`super::document`]); only documenting runs aide.
#[must_use]
pub struct FunctionRouter {
    served: axum::Router<App>,
    documented: Vec<Deferred<ApiRouter<App>>>,
}

impl FunctionRouter {
    pub(crate) fn new() -> Self {
        Self {
            served: axum::Router::new(),
            documented: Vec::new(),
        }
    }

    /// Serves `route` at `path` (axum's `route`: methods of one path merge, a method served twice
    /// panics), documented as aide's `api_route` would.
    pub fn api_route(mut self, path: &str, route: MethodRoutes) -> Self {
        self.served = self.served.route(path, route.served);
        let path = path.to_owned();
        let documented = route.documented;
        self.documented.push(Box::new(move |api: ApiRouter<App>| {
            let method_router = documented
                .into_iter()
                .fold(ApiMethodRouter::new(), |router, register| register(router));
            api.api_route(&path, method_router)
        }));
        self
    }

    /// Both sets of routes in one (axum's `merge`: a route served twice panics).
    pub fn merge(mut self, other: FunctionRouter) -> Self {
        self.served = self.served.merge(other.served);
        self.documented.extend(other.documented);
        self
    }

    /// The same routes registered with aide (which generates their documentation now).
    pub(crate) fn into_documented(self) -> ApiRouter<App> {
        self.documented
            .into_iter()
            .fold(ApiRouter::new(), |api, register| register(api))
    }
}

impl From<FunctionRouter> for axum::Router<App> {
    fn from(router: FunctionRouter) -> Self {
        router.served
    }
}

/// The methods of one path, as aide's `ApiMethodRouter` (built with [`get_with`] and the like,
/// chained with their methods of the same names).
#[must_use]
pub struct MethodRoutes {
    served: MethodRouter<App>,
    documented: Vec<Deferred<ApiMethodRouter<App>>>,
}

macro_rules! method {
    ($name:ident) => {
        #[doc = concat!("aide's `", stringify!($name), "`: the handler served now, its documentation (`transform` included) generated only by [`super::document`].")]
        pub fn $name<H, I, O, T, F>(handler: H, transform: F) -> MethodRoutes
        where
            H: Handler<T, App> + OperationHandler<I, O>,
            I: OperationInput + 'static,
            O: OperationOutput + 'static,
            T: 'static,
            F: FnOnce(TransformOperation<'_>) -> TransformOperation<'_> + Send + 'static,
        {
            MethodRoutes {
                served: MethodRouter::new(),
                documented: Vec::new(),
            }
            .$name(handler, transform)
        }

        impl MethodRoutes {
            #[doc = concat!("Also `", stringify!($name), "` on this path.")]
            pub fn $name<H, I, O, T, F>(mut self, handler: H, transform: F) -> Self
            where
                H: Handler<T, App> + OperationHandler<I, O>,
                I: OperationInput + 'static,
                O: OperationOutput + 'static,
                T: 'static,
                F: FnOnce(TransformOperation<'_>) -> TransformOperation<'_> + Send + 'static,
            {
                self.served = method!(@plain self.served, $name, handler.clone());
                self.documented.push(Box::new(move |router: ApiMethodRouter<App>| {
                    router.$name(handler, transform)
                }));
                self
            }
        }
    };
    (@plain $router:expr, get_with, $handler:expr) => { $router.get($handler) };
    (@plain $router:expr, post_with, $handler:expr) => { $router.post($handler) };
    (@plain $router:expr, put_with, $handler:expr) => { $router.put($handler) };
    (@plain $router:expr, patch_with, $handler:expr) => { $router.patch($handler) };
    (@plain $router:expr, delete_with, $handler:expr) => { $router.delete($handler) };
}

method!(get_with);
method!(post_with);
method!(put_with);
method!(patch_with);
method!(delete_with);

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Times aide asked for [`Counted`]'s JSON Schema, and times a route's `transform` ran.
    static SCHEMAS: AtomicUsize = AtomicUsize::new(0);
    static TRANSFORMS: AtomicUsize = AtomicUsize::new(0);

    #[derive(serde::Deserialize)]
    struct Counted {}

    impl schemars::JsonSchema for Counted {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "Counted".into()
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            SCHEMAS.fetch_add(1, Ordering::SeqCst);
            schemars::json_schema!({ "type": "object" })
        }
    }

    async fn handler(_: axum::Json<Counted>) {}

    fn router() -> FunctionRouter {
        super::super::documented()
            .api_route(
                "/a",
                get_with(handler, |op| {
                    TRANSFORMS.fetch_add(1, Ordering::SeqCst);
                    op.summary("a")
                })
                .post_with(handler, |op| op.summary("a, posted")),
            )
            .api_route("/b", delete_with(handler, |op| op.summary("b")))
    }

    #[test]
    fn serving_generates_no_documentation_and_document_has_every_route() {
        let served: axum::Router<App> = router().into();
        assert_eq!(
            SCHEMAS.load(Ordering::SeqCst),
            0,
            "a schema was generated to serve"
        );
        assert_eq!(
            TRANSFORMS.load(Ordering::SeqCst),
            0,
            "a transform ran to serve"
        );
        drop(served);

        let (_, api) = super::super::document(router());
        assert!(SCHEMAS.load(Ordering::SeqCst) > 0);
        assert_eq!(TRANSFORMS.load(Ordering::SeqCst), 1);
        let paths = api.paths.expect("paths");
        let a = paths.paths["/a"].as_item().expect("/a");
        assert_eq!(
            a.get.as_ref().and_then(|op| op.summary.as_deref()),
            Some("a")
        );
        assert_eq!(
            a.post.as_ref().and_then(|op| op.summary.as_deref()),
            Some("a, posted")
        );
        let b = paths.paths["/b"].as_item().expect("/b");
        assert!(b.delete.is_some() && b.get.is_none());
    }
}
