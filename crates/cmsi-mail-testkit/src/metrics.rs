//! A `/metrics` page read by the official Prometheus Python client's parser
//! (`python/read_metrics.py`): a page it refuses fails the test.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// One sample: a metric name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`cmsi_requests_total`, `…_bucket`, `…_count`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A parsed page: the families' types and every sample.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Family name → type (`counter`, `gauge`, `histogram`), as the parser
    /// reads them (a counter's family name has no `_total`).
    pub types: BTreeMap<String, String>,
    /// Every sample, in page order.
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses `page` with `prometheus_client.parser`; panics with the
    /// parser's message when it refuses the page.
    pub fn parse(page: &str) -> Metrics {
        let mut child = Command::new(crate::venv_python())
            .arg(crate::python_script("read_metrics.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start read_metrics.py");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(page.as_bytes())
            .expect("write the page");
        let output = child.wait_with_output().expect("read_metrics.py");
        assert!(
            output.status.success(),
            "the Prometheus parser refused the page: {}\n{page}",
            String::from_utf8_lossy(&output.stderr)
        );
        let parsed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for family in parsed["families"].as_array().expect("families") {
            let name = family["name"].as_str().expect("name").to_owned();
            types.insert(name, family["type"].as_str().expect("type").to_owned());
            for sample in family["samples"].as_array().expect("samples") {
                samples.push(Sample {
                    name: sample["name"].as_str().expect("name").to_owned(),
                    labels: sample["labels"]
                        .as_object()
                        .expect("labels")
                        .iter()
                        .map(|(key, value)| {
                            (key.clone(), value.as_str().expect("label").to_owned())
                        })
                        .collect(),
                    value: sample["value"].as_f64().expect("value"),
                });
            }
        }
        Metrics { types, samples }
    }

    /// The sum of the samples named `name` whose labels include `labels`
    /// (0 when there is none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.value).sum()
    }

    /// The samples named `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
    }

    /// Every value label `key` takes on samples named `name`.
    pub fn label_values(&self, name: &str, key: &str) -> std::collections::BTreeSet<String> {
        self.matching(name, &[])
            .filter_map(|sample| sample.labels.get(key).cloned())
            .collect()
    }
}
