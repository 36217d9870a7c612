//! The runtime snapshot: everything a request needs, built once from a [`Config`] and its
//! descriptors, then shared read-only (`Arc`) by every request until the next reload.
//!
//! Building it is where descriptor-dependent config checks happen: each route's methods must exist,
//! have usable HTTP rules, templates must parse, variables must name fields, and no two rules may
//! claim the same HTTP method + template.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::uri::PathAndQuery;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, Value,
};

use crate::certs::TlsError;
use crate::config::{
    Config, ConfigError, ConfigHttpRule, CorsConfig, HeaderRules, MethodSelector, Place,
    RouteConfig, UpstreamConfig,
};
use crate::descriptors;
use crate::edge::auth::{AuthRuntime, RoutePolicy};
use crate::edge::rate_limit::{Limiters, RouteLimits};
use crate::events::emit::{self, EventPlan};
use crate::listener::tls::TlsTerminator;
use crate::openapi::published::Published;
use crate::reflection::Reflected;
use crate::reflection::serve::Exposed;
use crate::state::cache::{ResponseCache, TagPlan};
use crate::transcode::json::{DecodeOptions, EncodeOptions};
use crate::transcode::request::{BodyRule, QueryOptions, resolve_field_path};
use crate::transcode::router::{Router, RouterBuilder};
use crate::transcode::template::PathTemplate;
use crate::upstream::Upstream;

const HTTP_BODY: &str = "google.api.HttpBody";

/// Options of one route entry, shared by all its bindings.
#[derive(Debug)]
pub struct RouteOptions {
    /// Route name (logs, metrics).
    pub name: String,
    /// Call deadline unless the client asks for less.
    pub timeout: Duration,
    /// JSON body decoding.
    pub decode: DecodeOptions,
    /// Query-parameter binding.
    pub query: QueryOptions,
    /// JSON output.
    pub encode: EncodeOptions,
    /// Largest request body.
    pub max_request_bytes: usize,
    /// Header/metadata allowlists.
    pub headers: HeaderRules,
    /// Which calls may be retried, per-try timeout.
    pub retry: crate::config::RouteRetryConfig,
    /// Token requirements.
    pub auth: RoutePolicy,
    /// Rate limits.
    pub rate_limits: RouteLimits,
    /// How server streams are written unless the client's `Accept` chooses.
    pub stream_format: crate::config::StreamFormat,
    /// Browser origins allowed to call (the route's policy, else the top-level one).
    pub cors: Option<crate::config::CorsConfig>,
    /// Caching of the route's GET answers (`None`: not cached).
    pub cache: Option<crate::config::RouteCacheConfig>,
}

/// One gRPC method exposed by a route.
#[derive(Debug)]
pub struct MethodRoute {
    /// `pkg.Service/Method`.
    pub full_name: String,
    /// `/pkg.Service/Method`, the HTTP/2 path of the gRPC call.
    pub grpc_path: PathAndQuery,
    /// Request message type.
    pub input: MessageDescriptor,
    /// Response message type.
    pub output: MessageDescriptor,
    /// Backend serving it.
    pub upstream: Arc<Upstream>,
    /// Route options.
    pub options: Arc<RouteOptions>,
    /// The method streams its responses (answered as a stream by the pipeline).
    pub server_streaming: bool,
    /// The method takes a stream of requests (fed from the request body as it arrives).
    pub client_streaming: bool,
    /// The event its successful writes (non-GET rules) emit; `None`: none.
    pub events: Option<Arc<EventPlan>>,
}

/// A method native gRPC and gRPC-Web clients may call through the gateway: every method of a
/// configured route, with or without an HTTP rule, any streaming kind.
#[derive(Debug)]
pub struct GrpcMethod {
    /// `/pkg.Service/Method`.
    pub grpc_path: PathAndQuery,
    /// Backend serving it.
    pub upstream: Arc<Upstream>,
    /// Options of the route that exposes it (deadline, header rules, name).
    pub options: Arc<RouteOptions>,
}

impl GrpcMethod {
    /// `pkg.Service`, the service the method belongs to.
    pub fn service(&self) -> &str {
        let path = self.grpc_path.path();
        path[1..].split_once('/').map_or("", |(service, _)| service)
    }
}

/// What the gateway's own reflection service shows of `methods`: their services and files.
fn exposed_of<'m>(
    pool: &DescriptorPool,
    methods: impl Iterator<Item = &'m Arc<GrpcMethod>>,
) -> Exposed {
    Exposed::new(
        pool,
        methods.map(|m| m.service().to_owned()).collect::<Vec<_>>(),
    )
}

/// One HTTP rule (method + template) leading to a [`MethodRoute`].
#[derive(Debug)]
pub struct Binding {
    /// The method called.
    pub method: Arc<MethodRoute>,
    /// HTTP method of the rule (`GET`, ..., custom kind).
    pub http_method: String,
    /// Template text, for listings.
    pub template: String,
    /// Which part of the request the body fills.
    pub body: BodyRule,
    /// The body is raw bytes (`google.api.HttpBody`), not JSON.
    pub raw_body: bool,
    /// The response field sent as the body, if not the whole message.
    pub response_body: Option<FieldDescriptor>,
    /// Where the rule was written, for config errors: `file:line:column` of the config entry, or
    /// of the method's `rpc` in its proto (just the proto's name when it has no source info).
    pub origin: String,
    /// How a matched path's cache tags are cut from it (by the template's variables).
    pub tags: TagPlan,
}

/// Everything requests need, immutable once built.
#[derive(Debug)]
pub struct Runtime {
    /// The config it was built from.
    pub config: Config,
    /// All descriptors.
    pub pool: DescriptorPool,
    /// HTTP method + path → binding.
    pub router: Router<Arc<Binding>>,
    /// Backends by name.
    pub upstreams: HashMap<String, Arc<Upstream>>,
    /// JSON output for errors that happen before a route is known.
    pub default_encode: EncodeOptions,
    /// JWT providers and their keys.
    pub auth: Arc<AuthRuntime>,
    /// Named rate limits and their per-key state.
    pub rate_limits: Arc<Limiters>,
    /// Methods callable by gRPC clients, by HTTP/2 path (`/pkg.Service/Method`).
    pub grpc_methods: HashMap<String, Arc<GrpcMethod>>,
    /// The response cache; kept across reloads that leave its bounds alone.
    pub cache: Arc<ResponseCache>,
    /// The OpenAPI document of this snapshot, built when first asked for (see the `openapi` module).
    pub openapi: OnceLock<Published>,
    /// What the backends with `reflection: true` described, as this snapshot was built with.
    pub reflected: Arc<Reflected>,
    /// Services of reflecting upstreams whose descriptors are missing (their calls answer 503),
    /// by service name.
    pub pending: HashMap<String, PendingService>,
    /// What the gateway's own reflection service shows on a listener serving every route: the
    /// routed services and their files.
    pub exposed: Exposed,
    /// Each route's policies, in config order (a reflection call is admitted under the first
    /// served route's: [`Runtime::reflection_on`]).
    pub route_options: Vec<Arc<RouteOptions>>,
    /// The documents of listeners that serve some routes only, by listener name, built when
    /// first asked for.
    pub listener_openapi: Mutex<HashMap<String, Arc<Published>>>,
}

/// A routed service whose descriptors server reflection has not given (yet).
#[derive(Debug, Clone)]
pub struct PendingService {
    /// The upstream asked.
    pub upstream: String,
    /// Why there are none.
    pub reason: String,
}

/// A rule as read from a proto annotation or the config, before it is checked.
struct RuleSpec {
    http_method: String,
    template: String,
    body: String,
    response_body: String,
    /// Place and key path of a rule written in the config; `None` for a proto annotation.
    config: Option<(Place, String)>,
}

impl Runtime {
    /// The gateway's own reflection service on a listener serving `routes` (`None`: every
    /// route): what it shows (the services of those routes and their files) and the policies its
    /// calls are admitted under (the first of those routes' in config order). `None` when the
    /// listener serves no route.
    pub fn reflection_on(
        &self,
        routes: Option<&HashSet<String>>,
    ) -> Option<(Arc<RouteOptions>, Exposed)> {
        let Some(routes) = routes else {
            let first = self.route_options.first()?.clone();
            return Some((first, self.exposed.clone()));
        };
        let first = self
            .route_options
            .iter()
            .find(|o| routes.contains(&o.name))?
            .clone();
        let served = self.grpc_methods.values();
        let served = served.filter(|m| routes.contains(&m.options.name));
        Some((first, exposed_of(&self.pool, served)))
    }

    /// Loads descriptors and builds the snapshot; every problem is reported, not just the first.
    pub fn build(config: Config) -> Result<Runtime, Vec<ConfigError>> {
        Runtime::build_with_problems(config, Vec::new())
    }

    /// Like [`Runtime::build`] for a config that already has `problems` of its own: descriptors
    /// and every route that survived validation are still checked, and all problems come back
    /// together (the config file's in line order, then those in other files).
    pub fn build_with_problems(
        config: Config,
        problems: Vec<ConfigError>,
    ) -> Result<Runtime, Vec<ConfigError>> {
        Runtime::build_reusing(config, problems, None)
    }

    /// Like [`Runtime::build_with_problems`], for a reload: upstreams whose config is unchanged
    /// from `previous` are the same `Arc<Upstream>`, so they keep their connection (and whatever
    /// state they hold, such as breakers).
    pub fn build_reusing(
        config: Config,
        problems: Vec<ConfigError>,
        previous: Option<&Runtime>,
    ) -> Result<Runtime, Vec<ConfigError>> {
        let reflected = previous.map(|p| p.reflected.clone()).unwrap_or_default();
        Runtime::build_reflecting(config, problems, previous, reflected)
    }

    /// Like [`Runtime::build_reusing`], with the descriptors server reflection gave
    /// (`reflected`) added after the local ones; a routed service of a reflecting upstream that
    /// has none is pending (answered 503), not an error.
    pub fn build_reflecting(
        config: Config,
        mut problems: Vec<ConfigError>,
        previous: Option<&Runtime>,
        reflected: Arc<Reflected>,
    ) -> Result<Runtime, Vec<ConfigError>> {
        let (pool, found) = descriptors::load_with_problems(&config.descriptors, &config.source);
        problems.extend(found);
        let Some(mut pool) = pool else {
            return Err(in_file_order(problems, &config.source));
        };
        let unusable: HashMap<String, String> = descriptors::add_reflected(&mut pool, &reflected)
            .into_iter()
            .collect();
        let upstreams: HashMap<String, Arc<Upstream>> = config
            .upstreams
            .iter()
            .map(|u| {
                let upstream = reuse_upstream(previous, u, &mut problems, &config.source);
                (u.name.clone(), upstream)
            })
            .collect();
        let previous_auth = previous.map(|p| &*p.auth);
        let auth = AuthRuntime::build_reusing(&config.auth, &config.source, previous_auth)
            .unwrap_or_else(|e| {
                problems.extend(e);
                AuthRuntime::default()
            });
        // Unchanged limits keep their buckets across a reload.
        let rate_limits = Limiters::reusing(&config.rate_limits, previous.map(|p| &*p.rate_limits));
        // The shared (Redis) tier, once configured, is handed over here with the bounds.
        let cache = ResponseCache::reusing(&config.cache, previous.map(|p| &p.cache));
        let mut builder = Builder {
            config: &config,
            pool: &pool,
            errors: Vec::new(),
            auth: &auth,
            rate_limits: &rate_limits,
            grpc_methods: HashMap::new(),
            reflection: (&reflected, &unusable),
            pending: HashMap::new(),
            route_options: Vec::new(),
        };
        let mut router = RouterBuilder::new(config.path_unescape);
        let http_ext = pool.get_extension_by_name("google.api.http");
        for route in &config.routes {
            let upstream = &upstreams[&config.upstreams[route.upstream].name];
            builder.add_route(route, upstream, http_ext.as_ref(), &mut router);
        }
        problems.append(&mut builder.errors);
        let grpc_methods = std::mem::take(&mut builder.grpc_methods);
        let pending = std::mem::take(&mut builder.pending);
        let route_options = std::mem::take(&mut builder.route_options);
        let exposed = exposed_of(&pool, grpc_methods.values());
        let router = router.build();
        problems.extend(openapi_collision(&config, &router));
        if !problems.is_empty() {
            return Err(in_file_order(problems, &config.source));
        }
        let default_encode = config
            .routes
            .first()
            .map(encode_options)
            .unwrap_or_default();
        Ok(Runtime {
            router,
            upstreams,
            pool,
            default_encode,
            config,
            auth: Arc::new(auth),
            rate_limits: Arc::new(rate_limits),
            grpc_methods,
            cache,
            openapi: OnceLock::new(),
            reflected,
            pending,
            exposed,
            route_options,
            listener_openapi: Mutex::default(),
        })
    }
}

struct Builder<'a> {
    config: &'a Config,
    pool: &'a DescriptorPool,
    errors: Vec<ConfigError>,
    auth: &'a AuthRuntime,
    rate_limits: &'a Limiters,
    grpc_methods: HashMap<String, Arc<GrpcMethod>>,
    /// What reflection gave, and the upstreams whose reflected files did not fit in the pool.
    reflection: (&'a Reflected, &'a HashMap<String, String>),
    /// Routed services of reflecting upstreams without descriptors.
    pending: HashMap<String, PendingService>,
    /// Each route's options, in config order.
    route_options: Vec<Arc<RouteOptions>>,
}

impl Builder<'_> {
    fn error(&mut self, place: Place, key: &str, reason: String) {
        self.errors.push(ConfigError {
            file: self.config.source.clone(),
            place,
            key: key.to_owned(),
            reason,
        });
    }

    fn add_route(
        &mut self,
        route: &RouteConfig,
        upstream: &Arc<Upstream>,
        http_ext: Option<&ExtensionDescriptor>,
        router: &mut RouterBuilder<Arc<Binding>>,
    ) {
        let options = self.options_of(route);
        if self.waits_for_reflection(route, upstream) {
            return;
        }
        let methods = self.select_methods(route);
        self.check_event_methods(route, &methods);
        let mut exposed = 0;
        for (method, place, key) in methods {
            self.add_grpc_method(&method, upstream, &options);
            let rules = self.rules_for(route, &method, http_ext);
            if rules.is_empty() {
                if matches!(route.selector, MethodSelector::Methods(_)) {
                    self.error(
                        place,
                        &key,
                        format!(
                            "method `{}` has no google.api.http rule (add one, or set auto_mapping: true)",
                            method.full_name()
                        ),
                    );
                }
                continue;
            }
            let events = self.event_plan(route, &method);
            let Some(method_route) =
                self.method_route(&method, upstream, (&options, events), place, &key)
            else {
                continue;
            };
            for rule in rules {
                if self.add_binding(&method, &method_route, &rule, (place, &key), router) {
                    exposed += 1;
                }
            }
        }
        if exposed == 0 && self.errors.is_empty() {
            self.error(
                route.place,
                &route.key,
                "exposes no method with an HTTP rule".to_owned(),
            );
        }
    }

    /// The options `route` shares among its methods, also kept in `route_options`.
    fn options_of(&mut self, route: &RouteConfig) -> Arc<RouteOptions> {
        let mut options = route_options(route, self.config.cors.as_ref());
        options.auth = self.auth.policy(&route.auth);
        options.rate_limits = self.rate_limits.route(&route.rate_limits);
        let options = Arc::new(options);
        self.route_options.push(options.clone());
        options
    }

    /// Whether `route` goes to a reflecting upstream that has not described one of its services;
    /// those services are then recorded as pending and the route is left out until it has.
    fn waits_for_reflection(&mut self, route: &RouteConfig, upstream: &Upstream) -> bool {
        if !upstream.config().reflection {
            return false;
        }
        let (reflected, unusable) = self.reflection;
        let name = &upstream.name;
        let services = route.services();
        let missing = services
            .iter()
            .filter(|s| self.pool.get_service_by_name(s).is_none())
            .find_map(|s| {
                unusable
                    .get(name)
                    .cloned()
                    .or_else(|| reflected.pending_reason(name, s))
            });
        let Some(reason) = missing else {
            return false;
        };
        for service in services {
            let pending = PendingService {
                upstream: name.clone(),
                reason: reason.clone(),
            };
            self.pending.entry(service).or_insert(pending);
        }
        true
    }

    /// Each `events.methods` entry of `route` must name one of the route's `methods`.
    fn check_event_methods(
        &mut self,
        route: &RouteConfig,
        methods: &[(MethodDescriptor, Place, String)],
    ) {
        let Some(events) = &route.events else { return };
        let names: Vec<String> = methods
            .iter()
            .map(|(m, ..)| format!("{}/{}", m.parent_service().full_name(), m.name()))
            .collect();
        let descriptors: Vec<MethodDescriptor> = methods.iter().map(|(m, ..)| m.clone()).collect();
        let encode = encode_options(route);
        let unmatched = emit::unmatched_route_paths(events, &descriptors, &encode);
        for p in emit::unknown_methods(events, &names)
            .into_iter()
            .chain(unmatched)
        {
            self.error(p.place, &p.key, p.value);
        }
    }

    /// The event plan of `method` on `route`, if the route has `events:` and the method is unary.
    fn event_plan(
        &mut self,
        route: &RouteConfig,
        method: &MethodDescriptor,
    ) -> Option<Arc<EventPlan>> {
        let events = route.events.as_ref()?;
        let encode = encode_options(route);
        match EventPlan::compile(&route.name, method, events, &encode) {
            Ok(plan) => plan.map(Arc::new),
            Err(problems) => {
                for p in problems {
                    self.error(p.place, &p.key, p.value);
                }
                None
            }
        }
    }

    /// The route of one gRPC method: what every binding of it shares.
    fn method_route(
        &mut self,
        method: &MethodDescriptor,
        upstream: &Arc<Upstream>,
        (options, events): (&Arc<RouteOptions>, Option<Arc<EventPlan>>),
        place: Place,
        key: &str,
    ) -> Option<Arc<MethodRoute>> {
        let full_name = format!("{}/{}", method.parent_service().full_name(), method.name());
        // Protobuf identifiers are always valid path characters; this guards hand-made descriptor sets.
        let Ok(grpc_path) = PathAndQuery::try_from(format!("/{full_name}")) else {
            let reason = format!("`{full_name}` cannot be used as an HTTP/2 path");
            self.error(place, key, reason);
            return None;
        };
        Some(Arc::new(MethodRoute {
            grpc_path,
            full_name,
            input: method.input(),
            output: method.output(),
            upstream: upstream.clone(),
            options: options.clone(),
            server_streaming: method.is_server_streaming(),
            client_streaming: method.is_client_streaming(),
            events,
        }))
    }

    /// Adds one HTTP rule of a method to the route table; false when it could not be (the
    /// reason is recorded, naming the rule that already holds its method and template).
    fn add_binding(
        &mut self,
        method: &MethodDescriptor,
        method_route: &Arc<MethodRoute>,
        rule: &RuleSpec,
        (place, key): (Place, &str),
        router: &mut RouterBuilder<Arc<Binding>>,
    ) -> bool {
        let (place, key) = rule.config.clone().unwrap_or((place, key.to_owned()));
        let origin = match rule.config {
            Some(_) => format!(
                "{}:{}:{}",
                self.config.source.display(),
                place.line,
                place.column
            ),
            None => proto_origin(method),
        };
        let Some(mut binding) = self.binding(method_route, rule, place, &key, origin) else {
            return false;
        };
        let template = match PathTemplate::parse(&rule.template) {
            Ok(t) => t,
            Err(e) => {
                self.error(place, &key, format!("{}: {e}", method_route.full_name));
                return false;
            }
        };
        binding.tags = TagPlan::of(&template);
        self.check_event_variable(method_route, rule, &template, (place, &key));
        let binding = Arc::new(binding);
        // The rule already holding this method + template, named in a conflict.
        let held = router
            .get(&rule.http_method, &template)
            .map(|h| format!(" of {} ({})", h.method.full_name, h.origin));
        // A config rule's own place already starts the error line.
        let own = match rule.config {
            Some(_) => String::new(),
            None => format!(" ({})", binding.origin),
        };
        if let Err(c) = router.insert(&rule.http_method, template, binding) {
            let reason = format!(
                "{}: route `{} {}`{own} conflicts with `{} {}`{}: both match the paths `{}`",
                method_route.full_name,
                c.method,
                c.new,
                c.method,
                c.existing,
                held.unwrap_or_default(),
                c.canonical,
            );
            self.error(place, &key, reason);
        }
        true
    }

    /// A write rule of a method whose events read `path.<var>` must have that variable.
    fn check_event_variable(
        &mut self,
        method_route: &MethodRoute,
        rule: &RuleSpec,
        template: &PathTemplate,
        (place, key): (Place, &str),
    ) {
        let Some(var) = method_route.events.as_ref().and_then(|p| p.path_variable()) else {
            return;
        };
        if rule.http_method != "GET" && !template.variables().any(|v| v == var) {
            let reason = format!(
                "{}: events read `path.{var}` but `{} {}` has no such variable",
                method_route.full_name, rule.http_method, rule.template
            );
            self.error(place, key, reason);
        }
    }

    fn select_methods(&mut self, route: &RouteConfig) -> Vec<(MethodDescriptor, Place, String)> {
        match &route.selector {
            MethodSelector::Service(name) => match self.pool.get_service_by_name(name) {
                Some(service) => service
                    .methods()
                    .map(|m| (m, route.place, route.key.clone()))
                    .collect(),
                None => {
                    let reason = format!("unknown service `{name}`{}", self.known_services_hint());
                    self.error(route.place, &format!("{}.service", route.key), reason);
                    Vec::new()
                }
            },
            MethodSelector::Methods(list) => list
                .iter()
                .filter_map(|m| match self.find_method(&m.value) {
                    Ok(found) => Some((found, m.place, m.key.clone())),
                    Err(reason) => {
                        self.error(m.place, &m.key, reason);
                        None
                    }
                })
                .collect(),
        }
    }

    /// Makes `method` callable by gRPC clients; the first route naming a method wins.
    fn add_grpc_method(
        &mut self,
        method: &MethodDescriptor,
        upstream: &Arc<Upstream>,
        options: &Arc<RouteOptions>,
    ) {
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let Ok(grpc_path) = PathAndQuery::try_from(path.as_str()) else {
            return;
        };
        self.grpc_methods.entry(path).or_insert_with(|| {
            Arc::new(GrpcMethod {
                grpc_path,
                upstream: upstream.clone(),
                options: options.clone(),
            })
        });
    }

    fn known_services_hint(&self) -> String {
        let mut names: Vec<String> = self
            .pool
            .services()
            .map(|s| s.full_name().to_owned())
            .collect();
        if names.is_empty() {
            return " (the descriptors define no services)".to_owned();
        }
        names.sort();
        format!(" (known: {})", names.join(", "))
    }

    fn find_method(&self, name: &str) -> Result<MethodDescriptor, String> {
        let (service, method) = name
            .rsplit_once('/')
            .ok_or_else(|| format!("`{name}` is not of the form pkg.Service/Method"))?;
        let service = self
            .pool
            .get_service_by_name(service)
            .ok_or_else(|| format!("unknown service `{service}`{}", self.known_services_hint()))?;
        service
            .methods()
            .find(|m| m.name() == method)
            .ok_or_else(|| format!("service `{}` has no method `{method}`", service.full_name()))
    }

    fn rules_for(
        &mut self,
        route: &RouteConfig,
        method: &MethodDescriptor,
        ext: Option<&ExtensionDescriptor>,
    ) -> Vec<RuleSpec> {
        let full = format!("{}/{}", method.parent_service().full_name(), method.name());
        let configured: Vec<&ConfigHttpRule> = route
            .http_rules
            .iter()
            .filter(|r| r.method.value == full)
            .collect();
        if !configured.is_empty() {
            return configured
                .into_iter()
                .map(|r| RuleSpec {
                    http_method: r.http_method.clone(),
                    template: r.template.value.clone(),
                    body: r.body.clone(),
                    response_body: r.response_body.clone(),
                    config: Some((r.template.place, r.template.key.clone())),
                })
                .collect();
        }
        let mut rules = Vec::new();
        if let Some(ext) = ext {
            let options = method.options();
            if options.has_extension(ext)
                && let Value::Message(rule) = options.get_extension(ext).as_ref()
            {
                collect_rules(rule, &mut rules, true);
            }
        }
        if rules.is_empty() && route.auto_mapping {
            rules.push(RuleSpec {
                http_method: "POST".to_owned(),
                template: format!("/{full}"),
                body: "*".to_owned(),
                response_body: String::new(),
                config: None,
            });
        }
        rules
    }

    /// One HTTP rule of a method as a binding; `None` (with every reason recorded) when its
    /// body, response body or path variables do not fit the method's messages.
    fn binding(
        &mut self,
        method: &Arc<MethodRoute>,
        rule: &RuleSpec,
        place: Place,
        key: &str,
        origin: String,
    ) -> Option<Binding> {
        let body = body_rule(method, &rule.body);
        let response_body = response_field(method, &rule.response_body);
        let mut problems: Vec<String> = [body.as_ref().err(), response_body.as_ref().err()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        problems.extend(template_problems(method, &rule.template));
        let label = format!(
            "{} ({} {})",
            method.full_name, rule.http_method, rule.template
        );
        for problem in &problems {
            self.error(place, key, format!("{label}: {problem}"));
        }
        let (Ok(body), Ok(response_body), true) = (body, response_body, problems.is_empty()) else {
            return None;
        };
        let raw_body = match &body {
            BodyRule::None => false,
            BodyRule::Whole => method.input.full_name() == HTTP_BODY,
            BodyRule::Field(f) => {
                matches!(f.kind(), Kind::Message(m) if m.full_name() == HTTP_BODY) && !f.is_list()
            }
        };
        Some(Binding {
            method: method.clone(),
            http_method: rule.http_method.clone(),
            template: rule.template.clone(),
            body,
            raw_body,
            response_body,
            origin,
            tags: TagPlan::default(),
        })
    }
}

/// The rule's `body`: none, the whole message, or one field of the request message.
fn body_rule(method: &MethodRoute, body: &str) -> Result<BodyRule, String> {
    match body {
        "" => Ok(BodyRule::None),
        "*" => Ok(BodyRule::Whole),
        name => method
            .input
            .get_field_by_name(name)
            .map(BodyRule::Field)
            .ok_or_else(|| {
                let input = method.input.full_name();
                format!("body field `{name}` is not a field of {input}")
            }),
    }
}

/// The rule's `response_body`: the field of the response message sent as the answer.
fn response_field(method: &MethodRoute, name: &str) -> Result<Option<FieldDescriptor>, String> {
    if name.is_empty() {
        return Ok(None);
    }
    match method.output.get_field_by_name(name) {
        Some(field) => Ok(Some(field)),
        None => {
            let output = method.output.full_name();
            Err(format!("response_body `{name}` is not a field of {output}"))
        }
    }
}

/// What is wrong with a rule's path template: its syntax, or variables naming no request field.
fn template_problems(method: &MethodRoute, template: &str) -> Vec<String> {
    match PathTemplate::parse(template) {
        Ok(template) => template
            .variables()
            .filter_map(|variable| {
                let reason = resolve_field_path(&method.input, variable).err()?;
                Some(format!("path variable `{variable}`: {reason}"))
            })
            .collect(),
        Err(e) => vec![e.to_string()],
    }
}

/// `file:line:column` of the method's `rpc` in its proto (1-based), or the file name alone when
/// the descriptors carry no source info (binary descriptor sets usually do not).
fn proto_origin(method: &MethodDescriptor) -> String {
    let file = method.parent_file();
    let span = file
        .file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == method.path()))
        .map(|l| l.span.clone());
    match span.as_deref() {
        Some([line, column, ..]) => format!("{}:{}:{}", file.name(), line + 1, column + 1),
        _ => file.name().to_owned(),
    }
}

/// Flattens an HttpRule and its `additional_bindings` (one level deep, as the spec allows).
fn collect_rules(rule: &DynamicMessage, out: &mut Vec<RuleSpec>, top: bool) {
    let text = |name: &str| -> String {
        rule.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut pattern = None;
    for verb in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(verb) {
            pattern = Some((verb.to_ascii_uppercase(), text(verb)));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref()
    {
        let get = |n: &str| {
            custom
                .get_field_by_name(n)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        pattern = Some((get("kind").to_ascii_uppercase(), get("path")));
    }
    if let Some((http_method, template)) = pattern {
        out.push(RuleSpec {
            http_method,
            template,
            body: text("body"),
            response_body: text("response_body"),
            config: None,
        });
    }
    if top
        && let Some(Value::List(extra)) = rule.get_field_by_name("additional_bindings").as_deref()
    {
        for item in extra {
            if let Value::Message(nested) = item {
                collect_rules(nested, out, false);
            }
        }
    }
}

fn encode_options(route: &RouteConfig) -> EncodeOptions {
    EncodeOptions {
        emit_defaults: route.transcoding.emit_defaults,
        proto_field_names: route.transcoding.proto_field_names,
        enums_as_ints: route.transcoding.enums_as_ints,
    }
}

/// A route's options from its config; `default_cors` (the top-level policy) unless it has its own.
fn route_options(route: &RouteConfig, default_cors: Option<&CorsConfig>) -> RouteOptions {
    let t = &route.transcoding;
    RouteOptions {
        name: route.name.clone(),
        timeout: route.timeout,
        decode: DecodeOptions {
            ignore_unknown_fields: t.ignore_unknown_fields,
            max_depth: t.max_json_depth as usize,
        },
        query: QueryOptions {
            ignore_unknown: t.ignore_unknown_query_parameters,
            ignored: t.ignored_query_parameters.clone(),
            unescape_plus: t.query_unescape_plus,
        },
        encode: encode_options(route),
        max_request_bytes: t.max_request_bytes,
        headers: route.headers.clone(),
        retry: route.retry.clone(),
        auth: RoutePolicy::default(),
        rate_limits: RouteLimits::default(),
        stream_format: t.stream_format,
        cors: route.cors.as_ref().or(default_cors).cloned(),
        cache: route.cache.clone(),
    }
}

/// A route answering `GET` at the OpenAPI document's path (or its YAML sibling), or at the docs
/// page's: that route could never be reached.
fn openapi_collision(config: &Config, router: &Router<Arc<Binding>>) -> Option<ConfigError> {
    let openapi = &config.openapi;
    let (path, key, place, binding) =
        openapi
            .served_paths()
            .into_iter()
            .find_map(|(p, key, place)| {
                let binding = router.lookup("GET", &p).ok()?.value.clone();
                Some((p, key, place, binding))
            })?;
    let written = if place.line > 0 {
        key.to_owned()
    } else {
        format!("{key} (default)")
    };
    Some(ConfigError {
        file: config.source.clone(),
        place,
        reason: format!(
            "`{}` is also matched by route `GET {}` of {} ({}): the gateway answers it first, \
             so that route would never be reached; set `{key}` elsewhere or `openapi.enabled: false`",
            path, binding.template, binding.method.full_name, binding.origin
        ),
        key: written,
    })
}

/// `previous`'s upstream named like `config` when its config is equal, else a new one. A bad
/// TLS file is a problem placed at its setting; the upstream then stands in without TLS, so the
/// routes using it are still checked (the runtime is refused anyway).
fn reuse_upstream(
    previous: Option<&Runtime>,
    config: &UpstreamConfig,
    problems: &mut Vec<ConfigError>,
    source: &Path,
) -> Arc<Upstream> {
    if let Some(upstream) = previous
        .filter(|p| p.config.upstreams.iter().any(|u| u == config))
        .and_then(|p| p.upstreams.get(&config.name).cloned())
    {
        return upstream;
    }
    Arc::new(Upstream::new(config).unwrap_or_else(|e| {
        problems.push(tls_problem(config, &e, source));
        Upstream::with_tls(config, None)
    }))
}

/// A TLS file problem of `config`, placed at the setting naming the file.
fn tls_problem(config: &UpstreamConfig, error: &TlsError, source: &Path) -> ConfigError {
    let setting = config.tls.as_ref().and_then(|tls| {
        [&tls.ca, &tls.client_cert, &tls.client_key]
            .into_iter()
            .flatten()
            .find(|p| Some(p.value.as_path()) == error.path())
    });
    ConfigError {
        file: source.to_owned(),
        place: setting.map(|s| s.place).unwrap_or_default(),
        key: setting.map_or_else(
            || format!("upstreams.{}.tls", config.name),
            |s| s.key.clone(),
        ),
        reason: error.to_string(),
    }
}

/// Loads a config file and builds its runtime for a reload, reusing `previous`'s unchanged
/// upstreams (see [`Runtime::build_reusing`]).
pub fn load_reusing(path: &Path, previous: &Runtime) -> Result<Runtime, Vec<ConfigError>> {
    load_reflecting(path, previous, previous.reflected.clone())
}

/// Like [`load_reusing`], with newly fetched reflection descriptors.
pub fn load_reflecting(
    path: &Path,
    previous: &Runtime,
    reflected: Arc<Reflected>,
) -> Result<Runtime, Vec<ConfigError>> {
    let (config, problems) = Config::load_with_problems(path).map_err(|e| e.0)?;
    Runtime::build_reflecting(config, problems, Some(previous), reflected)
}

/// Loads a config file and builds its runtime: the one entry point for `run` and `validate`.
/// Every HTTPS listener's certificate, key and CA files are read and checked too, so `validate`
/// reports a missing, unparsable or mismatched one at its setting. (A reload does not: listener
/// files have their own reload, which keeps the old certificates when a file is broken.)
pub fn load(path: &Path) -> Result<Runtime, Vec<ConfigError>> {
    let (config, mut problems) = Config::load_with_problems(path).map_err(|e| e.0)?;
    problems.extend(listener_tls_problems(&config));
    Runtime::build_with_problems(config, problems)
}

/// The first problem of each HTTPS listener's files, placed at the setting naming the file.
fn listener_tls_problems(config: &Config) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    for (i, listener) in config.listeners.iter().enumerate() {
        let Some(tls) = &listener.tls else { continue };
        let Err(error) = TlsTerminator::load(&listener.name, tls.clone()) else {
            continue;
        };
        let files = tls.certificates.iter().flat_map(|c| [&c.cert, &c.key]);
        let setting = files
            .chain(tls.client_auth.as_ref().map(|a| &a.ca))
            .find(|p| Some(p.value.as_path()) == error.path());
        problems.push(ConfigError {
            file: config.source.clone(),
            place: setting.map(|s| s.place).unwrap_or_default(),
            key: setting.map_or_else(|| format!("listeners[{i}].tls"), |s| s.key.clone()),
            reason: error.to_string(),
        });
    }
    problems
}

/// Problems in the config file first, by line and column, then those in other files (protos).
fn in_file_order(mut problems: Vec<ConfigError>, config_file: &Path) -> Vec<ConfigError> {
    problems.sort_by_key(|e| (e.file != config_file, e.place.line, e.place.column));
    problems
}
