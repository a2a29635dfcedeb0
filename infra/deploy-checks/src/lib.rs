//! Checks of `template.yaml` that `cfn-lint` does not make (it stops reporting undefined `!Ref` /
//! `${…}` once the template has an `AWS::Serverless::HttpApi`), and the cross-check of the
//! template's HTTP routes against the handlers' routers. Pure functions over the parsed YAML, so
//! each check is unit tested on small inline templates; `tests/template.rs` runs them on the real
//! `template.yaml` (part of `cargo xtask test`).

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

/// Pseudo parameters CloudFormation defines in every template.
pub const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template is not YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template has no `{0}` section")]
    Missing(&'static str),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template(pub Value);

/// One `!Ref`, `!GetAtt`, `${…}`, `!If` condition or `DependsOn` naming something undefined.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UndefinedReference {
    /// Where it was found, e.g. `Resources.HttpApi.Properties.Auth…`.
    pub at: String,
    /// `Ref`, `GetAtt`, `Sub`, `Condition` or `DependsOn`.
    pub kind: &'static str,
    pub name: String,
}

/// An HTTP route: method (upper case) and path template (`{name}` for a parameter).
pub type RouteKey = (String, String);

/// A route served by a function crate (its binary name in the template).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateRoute {
    pub binary: String,
    pub method: String,
    pub path: String,
    /// `false` when the event sets `Auth.Authorizer: NONE`.
    pub authorized: bool,
}

/// A difference between the template's routes and the handlers'.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteMismatch {
    /// The template sends this route to `binary`, whose `ROUTES` does not have it.
    NoHandler {
        binary: String,
        method: String,
        path: String,
    },
    /// `binary` handles this route but the template does not route it there.
    NoRoute {
        binary: String,
        method: String,
        path: String,
    },
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Ok(Self(serde_yaml::from_str(text)?))
    }

    fn section(&self, name: &'static str) -> Option<&serde_yaml::Mapping> {
        self.0.get(name).and_then(Value::as_mapping)
    }

    fn keys(&self, name: &'static str) -> BTreeSet<String> {
        self.section(name)
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn parameters(&self) -> BTreeSet<String> {
        self.keys("Parameters")
    }

    pub fn resources(&self) -> BTreeSet<String> {
        self.keys("Resources")
    }

    pub fn conditions(&self) -> BTreeSet<String> {
        self.keys("Conditions")
    }

    /// Every environment variable the template gives any function (Globals and per function).
    pub fn environment_variables(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut add = |variables: Option<&Value>| {
            if let Some(map) = variables.and_then(Value::as_mapping) {
                names.extend(map.keys().filter_map(|k| k.as_str().map(str::to_owned)));
            }
        };
        add(self
            .0
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables")));
        for (_, resource) in self.functions() {
            add(resource
                .get("Properties")
                .and_then(|p| p.get("Environment"))
                .and_then(|e| e.get("Variables")));
        }
        names
    }

    /// `(logical id, resource)` of every `AWS::Serverless::Function`.
    pub fn functions(&self) -> Vec<(String, &Value)> {
        self.section("Resources")
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(_, r)| {
                r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function")
            })
            .filter_map(|(k, r)| Some((k.as_str()?.to_owned(), r)))
            .collect()
    }

    /// The binary (function crate) each function is built from: `Metadata.BuildProperties.Binary`.
    pub fn function_binaries(&self) -> BTreeMap<String, String> {
        self.functions()
            .into_iter()
            .filter_map(|(id, r)| {
                let binary = r
                    .get("Metadata")?
                    .get("BuildProperties")?
                    .get("Binary")?
                    .as_str()?;
                Some((id, binary.to_owned()))
            })
            .collect()
    }

    /// Every `HttpApi` event of every function, by the function's binary.
    pub fn routes(&self) -> Vec<TemplateRoute> {
        let binaries = self.function_binaries();
        let mut routes = Vec::new();
        for (id, resource) in self.functions() {
            let binary = binaries.get(&id).cloned().unwrap_or(id);
            let Some(events) = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping)
            else {
                continue;
            };
            for event in events.values() {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let properties = event.get("Properties");
                let field = |name: &str| {
                    properties
                        .and_then(|p| p.get(name))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let authorizer = properties
                    .and_then(|p| p.get("Auth"))
                    .and_then(|a| a.get("Authorizer"))
                    .and_then(Value::as_str);
                routes.push(TemplateRoute {
                    binary: binary.clone(),
                    method: field("Method").to_ascii_uppercase(),
                    path: field("Path"),
                    authorized: authorizer != Some("NONE"),
                });
            }
        }
        routes.sort();
        routes
    }

    /// Every reference to a name the template does not define.
    pub fn undefined_references(&self) -> Vec<UndefinedReference> {
        let mut defined: BTreeSet<String> = self.parameters();
        defined.extend(self.resources());
        defined.extend(PSEUDO_PARAMETERS.iter().map(|s| (*s).to_owned()));
        let mut walker = Walker {
            defined,
            resources: self.resources(),
            conditions: self.conditions(),
            found: Vec::new(),
        };
        for section in ["Globals", "Conditions", "Resources", "Outputs"] {
            if let Some(value) = self.0.get(section) {
                walker.walk(value, section.to_owned());
            }
        }
        // `DependsOn` and a resource's `Condition` are names, not intrinsic functions.
        if let Some(resources) = self.section("Resources") {
            for (id, resource) in resources {
                let id = id.as_str().unwrap_or_default();
                let depends: Vec<&str> = match resource.get("DependsOn") {
                    Some(Value::String(one)) => vec![one.as_str()],
                    Some(Value::Sequence(many)) => many.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                for name in depends {
                    if !walker.resources.contains(name) {
                        walker.found.push(UndefinedReference {
                            at: format!("Resources.{id}.DependsOn"),
                            kind: "DependsOn",
                            name: name.to_owned(),
                        });
                    }
                }
                if let Some(condition) = resource.get("Condition").and_then(Value::as_str) {
                    if !walker.conditions.contains(condition) {
                        walker.found.push(UndefinedReference {
                            at: format!("Resources.{id}.Condition"),
                            kind: "Condition",
                            name: condition.to_owned(),
                        });
                    }
                }
            }
        }
        walker.found.sort();
        walker.found.dedup();
        walker.found
    }
}

struct Walker {
    defined: BTreeSet<String>,
    resources: BTreeSet<String>,
    conditions: BTreeSet<String>,
    found: Vec<UndefinedReference>,
}

impl Walker {
    fn missing(&mut self, at: &str, kind: &'static str, name: &str) {
        self.found.push(UndefinedReference {
            at: at.to_owned(),
            kind,
            name: name.to_owned(),
        });
    }

    fn check_ref(&mut self, at: &str, value: &Value) {
        if let Some(name) = value.as_str() {
            if !self.defined.contains(name) {
                self.missing(at, "Ref", name);
            }
        }
    }

    fn check_get_att(&mut self, at: &str, value: &Value) {
        let resource = match value {
            Value::String(dotted) => dotted.split('.').next().map(str::to_owned),
            Value::Sequence(parts) => parts.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        if let Some(resource) = resource {
            if !self.resources.contains(&resource) {
                self.missing(at, "GetAtt", &resource);
            }
        }
    }

    fn check_sub(&mut self, at: &str, value: &Value) {
        let (text, local): (Option<&str>, BTreeSet<String>) = match value {
            Value::String(text) => (Some(text), BTreeSet::new()),
            Value::Sequence(parts) => (
                parts.first().and_then(Value::as_str),
                parts
                    .get(1)
                    .and_then(Value::as_mapping)
                    .map(|m| {
                        m.keys()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => (None, BTreeSet::new()),
        };
        for name in sub_variables(text.unwrap_or_default()) {
            if local.contains(&name) {
                continue;
            }
            // `${Resource.Attribute}` is a GetAtt; `${Name}` a Ref.
            match name.split_once('.') {
                Some((resource, _)) if !name.starts_with("AWS::") => {
                    if !self.resources.contains(resource) {
                        self.missing(at, "Sub", &name);
                    }
                }
                _ => {
                    if !self.defined.contains(&name) {
                        self.missing(at, "Sub", &name);
                    }
                }
            }
        }
    }

    fn check_if(&mut self, at: &str, value: &Value) {
        if let Some(condition) = value
            .as_sequence()
            .and_then(|s| s.first())
            .and_then(Value::as_str)
        {
            if !self.conditions.contains(condition) {
                self.missing(at, "Condition", condition);
            }
        }
    }

    fn intrinsic(&mut self, at: &str, function: &str, argument: &Value) {
        match function {
            "Ref" => self.check_ref(at, argument),
            "GetAtt" => self.check_get_att(at, argument),
            "Sub" => self.check_sub(at, argument),
            "If" => self.check_if(at, argument),
            "Condition" => {
                if let Some(name) = argument.as_str() {
                    if !self.conditions.contains(name) {
                        self.missing(at, "Condition", name);
                    }
                }
            }
            _ => {}
        }
    }

    fn walk(&mut self, value: &Value, at: String) {
        match value {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let function = tag.trim_start_matches('!');
                self.intrinsic(&at, function, &tagged.value);
                self.walk(&tagged.value, at);
            }
            Value::Mapping(map) => {
                for (key, child) in map {
                    let key = key.as_str().unwrap_or_default();
                    if let Some(function) = key.strip_prefix("Fn::") {
                        self.intrinsic(&at, function, child);
                    } else if key == "Ref" && map.len() == 1 {
                        self.intrinsic(&at, "Ref", child);
                    }
                    self.walk(child, format!("{at}.{key}"));
                }
            }
            Value::Sequence(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.walk(child, format!("{at}[{i}]"));
                }
            }
            _ => {}
        }
    }
}

/// The `${…}` variables of a `!Sub` string; `${!Literal}` is an escape, not a variable.
pub fn sub_variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].trim();
        if !name.starts_with('!') {
            names.push(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    names
}

/// Compares the template's routes with the handlers' (`binary` → the routes its router serves). Every route in
/// the template must be handled by the binary it is sent to, and every handled route routed.
pub fn compare_routes(
    template: &[TemplateRoute],
    handlers: &BTreeMap<String, BTreeSet<RouteKey>>,
) -> Vec<RouteMismatch> {
    let mut in_template: BTreeMap<&str, BTreeSet<RouteKey>> = BTreeMap::new();
    for route in template {
        in_template
            .entry(route.binary.as_str())
            .or_default()
            .insert((route.method.clone(), route.path.clone()));
    }
    let mut mismatches = Vec::new();
    for (binary, routes) in &in_template {
        let handled = handlers.get(*binary);
        for (method, path) in routes {
            if !handled.is_some_and(|h| h.contains(&(method.clone(), path.clone()))) {
                mismatches.push(RouteMismatch::NoHandler {
                    binary: (*binary).to_owned(),
                    method: method.clone(),
                    path: path.clone(),
                });
            }
        }
    }
    for (binary, routes) in handlers {
        let routed = in_template.get(binary.as_str());
        for (method, path) in routes {
            if !routed.is_some_and(|r| r.contains(&(method.clone(), path.clone()))) {
                mismatches.push(RouteMismatch::NoRoute {
                    binary: binary.clone(),
                    method: method.clone(),
                    path: path.clone(),
                });
            }
        }
    }
    mismatches.sort();
    mismatches
}

/// Backticked names in a Markdown section (from its `## heading` to the next `## `).
pub fn backticked_in_section(markdown: &str, heading: &str) -> BTreeSet<String> {
    let mut in_section = false;
    let mut names = BTreeSet::new();
    for line in markdown.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_section = title.trim() == heading;
            continue;
        }
        if !in_section {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            names.insert(inside.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Issuer:
    Type: String
Conditions:
  HasIssuer: !Not [!Equals [!Ref Issuer, ""]]
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        Authorizers:
          Jwt:
            JwtConfiguration:
              issuer: !Ref Issuer
  Table:
    Type: AWS::DynamoDB::Table
  ShopFunction:
    Type: AWS::Serverless::Function
    DependsOn: Table
    Metadata:
      BuildProperties:
        Binary: shop
    Properties:
      Environment:
        Variables:
          TABLE_NAME: !Ref Table
          LABEL: !Sub "${AWS::StackName}-${Table}-${Table.Arn}-${!Literal}"
      Policies:
        - Statement:
            - Resource: !GetAtt Table.Arn
      Events:
        List:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: get
            Path: /v1/items
        Hook:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: POST
            Path: /v1/hooks/{id}
            Auth:
              Authorizer: NONE
Outputs:
  Url:
    Value: !If [HasIssuer, !Sub "https://${Api}.example", !Ref "AWS::NoValue"]
"#;

    fn small() -> Template {
        Template::parse(SMALL).unwrap()
    }

    fn with(from: &str, to: &str) -> Template {
        assert!(
            SMALL.contains(from),
            "test edit `{from}` not in the template"
        );
        Template::parse(&SMALL.replacen(from, to, 1)).unwrap()
    }

    fn names(found: &[UndefinedReference]) -> Vec<(&'static str, &str)> {
        found.iter().map(|r| (r.kind, r.name.as_str())).collect()
    }

    #[test]
    fn a_template_whose_names_are_all_defined_passes() {
        assert_eq!(small().undefined_references(), vec![]);
    }

    #[test]
    fn an_undefined_ref_is_reported_with_where_it_is() {
        let found = with("TABLE_NAME: !Ref Table", "TABLE_NAME: !Ref Tabel").undefined_references();
        assert_eq!(names(&found), vec![("Ref", "Tabel")]);
        assert!(found[0].at.contains("TABLE_NAME"), "{:?}", found[0]);
    }

    #[test]
    fn an_undefined_get_att_is_reported() {
        let found = with("!GetAtt Table.Arn", "!GetAtt Queue.Arn").undefined_references();
        assert_eq!(names(&found), vec![("GetAtt", "Queue")]);
    }

    #[test]
    fn undefined_sub_variables_are_reported_and_escapes_are_not() {
        let found =
            with("${AWS::StackName}-${Table}", "${AWS::StackNam}-${Stage}").undefined_references();
        assert_eq!(
            names(&found),
            vec![("Sub", "AWS::StackNam"), ("Sub", "Stage")]
        );
        let found = with("${Table.Arn}", "${Bucket.Arn}").undefined_references();
        assert_eq!(names(&found), vec![("Sub", "Bucket.Arn")]);
    }

    #[test]
    fn sub_with_a_variable_map_defines_its_own_names() {
        let t = with(
            "LABEL: !Sub \"${AWS::StackName}-${Table}-${Table.Arn}-${!Literal}\"",
            "LABEL: !Sub [\"${Local}-${Other}\", {Local: x}]",
        );
        assert_eq!(names(&t.undefined_references()), vec![("Sub", "Other")]);
    }

    #[test]
    fn long_form_intrinsics_an_unknown_condition_and_depends_on_are_checked() {
        let t = with(
            "TABLE_NAME: !Ref Table",
            "TABLE_NAME: {Ref: Nope}\n          ARN: {\"Fn::GetAtt\": [Gone, Arn]}",
        );
        assert_eq!(
            names(&t.undefined_references()),
            vec![("GetAtt", "Gone"), ("Ref", "Nope")]
        );
        let t = with("!If [HasIssuer,", "!If [HasIsuer,");
        assert_eq!(
            names(&t.undefined_references()),
            vec![("Condition", "HasIsuer")]
        );
        let t = with("DependsOn: Table", "DependsOn: [Table, LogGroup]");
        assert_eq!(
            names(&t.undefined_references()),
            vec![("DependsOn", "LogGroup")]
        );
    }

    #[test]
    fn routes_carry_binary_upper_case_method_and_authorizer() {
        let routes = small().routes();
        assert_eq!(
            routes,
            vec![
                TemplateRoute {
                    binary: "shop".into(),
                    method: "GET".into(),
                    path: "/v1/items".into(),
                    authorized: true,
                },
                TemplateRoute {
                    binary: "shop".into(),
                    method: "POST".into(),
                    path: "/v1/hooks/{id}".into(),
                    authorized: false,
                },
            ]
        );
    }

    fn handlers(routes: &[(&str, &str, &str)]) -> BTreeMap<String, BTreeSet<RouteKey>> {
        let mut map: BTreeMap<String, BTreeSet<RouteKey>> = BTreeMap::new();
        for (binary, method, path) in routes {
            map.entry((*binary).to_owned())
                .or_default()
                .insert(((*method).to_owned(), (*path).to_owned()));
        }
        map
    }

    const SHOP: &[(&str, &str, &str)] = &[
        ("shop", "GET", "/v1/items"),
        ("shop", "POST", "/v1/hooks/{id}"),
    ];

    #[test]
    fn matching_routes_pass() {
        assert_eq!(compare_routes(&small().routes(), &handlers(SHOP)), vec![]);
    }

    #[test]
    fn a_route_removed_from_the_template_is_a_handler_without_route() {
        let template = Template::parse(&SMALL.replace(
            "        List:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref Api\n            Method: get\n            Path: /v1/items\n",
            "",
        ))
        .unwrap();
        assert_eq!(template.routes().len(), 1, "the edit removed one route");
        assert_eq!(
            compare_routes(&template.routes(), &handlers(SHOP)),
            vec![RouteMismatch::NoRoute {
                binary: "shop".into(),
                method: "GET".into(),
                path: "/v1/items".into(),
            }]
        );
    }

    #[test]
    fn a_route_removed_from_the_handlers_is_a_route_without_handler() {
        assert_eq!(
            compare_routes(&small().routes(), &handlers(&SHOP[..1])),
            vec![RouteMismatch::NoHandler {
                binary: "shop".into(),
                method: "POST".into(),
                path: "/v1/hooks/{id}".into(),
            }]
        );
    }

    #[test]
    fn a_route_sent_to_the_wrong_function_fails_both_ways() {
        let found = compare_routes(
            &small().routes(),
            &handlers(&[
                ("shop", "GET", "/v1/items"),
                ("hooks", "POST", "/v1/hooks/{id}"),
            ]),
        );
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn backticked_names_are_read_from_one_section_only() {
        let md = "## A\nuse `x` and `y`\n## Deploy\n| `Stage` | `dfnsWebhookSecret` |\n### sub\n`z`\n## B\n`w`\n";
        let names = backticked_in_section(md, "Deploy");
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["Stage", "dfnsWebhookSecret", "z"]
        );
    }
}
