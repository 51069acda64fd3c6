"""Field types shared by both kinds: names, S3 URIs, digests, quantities.

Shapes a regular expression can say well (Kubernetes names) use `pattern`, whose API-server
message quotes the expression; URIs, digests and schedules use CEL rules instead, so a refusal
explains which rule was broken in words.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from warmstart.api.markers import Cel, IntOrString

# RFC 1123 label: what Kubernetes accepts for most object names that end up in labels.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# RFC 1123 subdomain: Secret, Deployment, ServiceAccount and PriorityClass names.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
ENV_VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# The grammar of resource.Quantity, as controller-gen emits it for Kubernetes types.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]
EnvVarName = Annotated[str, Field(min_length=1, max_length=128, pattern=ENV_VAR_NAME_PATTERN)]
# A subdomain short enough to be a label value too: names the operator copies into labels
# of child objects (the lineage's name, the Kueue queue's name).
LabelSafeName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_SUBDOMAIN_PATTERN)]
# Version names become path segments under storage.uri and label values, hence a DNS label.
VersionName = DnsLabel

Quantity = Annotated[int | str, IntOrString(pattern=QUANTITY_PATTERN)]

# S3 keys are at most 1024 bytes; the bound also keeps the CEL cost estimate small.
S3_URI_MAX_LENGTH = 1024

# S3 bucket naming rules (general purpose buckets), one rule per message so a refusal says
# which rule a name broke. Each rule is anchored at `s3://`, so only the first rule speaks
# for a URI that is not an s3:// URI at all.
_S3_URI_RULES = (
    Cel(
        'self.startsWith("s3://")',
        "must be an s3:// URI such as s3://bucket/prefix/ (http(s) URLs and relative paths "
        "are not accepted)",
    ),
    Cel(
        '!self.startsWith("s3://") || self.matches("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/|$)")',
        "bucket name must be 3-63 characters of lowercase letters, digits, dots and hyphens, "
        "beginning and ending with a letter or digit",
    ),
    Cel(
        '!self.matches("^s3://[^/]*[.][.]")',
        "bucket name must not contain two adjacent periods",
    ),
    Cel(
        '!self.matches("^s3://[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+(/|$)")',
        "bucket name must not be formatted as an IP address",
    ),
    Cel(
        '!self.matches("^s3://(xn--|sthree-|amzn-s3-demo-)") && '
        '!self.matches("^s3://[^/]*(-s3alias|--ol-s3|[.]mrap|--x-s3|--table-s3)(/|$)")',
        "bucket name must not use a prefix (xn--, sthree-, amzn-s3-demo-) or suffix "
        "(-s3alias, --ol-s3, .mrap, --x-s3, --table-s3) that S3 reserves",
    ),
    Cel(
        '!self.matches("/[.][.](/|$)")',
        "key must not contain '..' path segments",
    ),
    Cel(
        '!self.matches("(?i)/([.]|%2e)*%2e([.]|%2e)*(/|$)")',
        "key must not contain percent-encoded dot segments (%2e, %2E): a server that decodes "
        "them would read outside the prefix",
    ),
    Cel(
        '!self.matches("[?#]")',
        "must not contain a query (?) or fragment (#): an s3:// URI names a bucket and key only",
    ),
    Cel(
        '!self.matches("[[:space:]\\\\p{Cc}]")',
        "must not contain whitespace or control characters",
    ),
)

_KEY_REQUIRED = Cel(
    '!self.startsWith("s3://") || self.matches("^s3://[^/]+/.")',
    "must name a key inside the bucket (s3://bucket/key), not the bucket alone",
)

# A bucket, optionally with a prefix: where a lineage keeps its versions.
S3URI = Annotated[str, Field(min_length=1, max_length=S3_URI_MAX_LENGTH), *_S3_URI_RULES]
# An object or a "directory" inside a bucket: data sets and checkpoints.
S3KeyURI = Annotated[
    str, Field(min_length=1, max_length=S3_URI_MAX_LENGTH), *_S3_URI_RULES, _KEY_REQUIRED
]

Digest = Annotated[
    str,
    Field(max_length=71),
    Cel(
        'self.matches("^sha256:[0-9a-f]{64}$")',
        "must be 'sha256:' followed by 64 lowercase hexadecimal digits",
    ),
]
