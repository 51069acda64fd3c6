"""Field types for strings the operator copies into pods: images, environment names, label and
resource keys, free text.

They are the trust boundary at admission: whatever the API server lets through here ends up
in a Job or Deployment the operator writes with its own rights, so each type refuses what a
pod spec would misread (control characters, names that shadow the process environment).
The same rules are checked again by the operator (warmstart_operator/trust.py) for clusters
whose CRDs predate them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from warmstart.api.fields import ENV_VAR_NAME_PATTERN, LABEL_VALUE_PATTERN
from warmstart.api.markers import Cel, MaxProperties

# \p{Cc}: C0 and C1 control characters and DEL (newline, tab, NUL, ESC, U+0085 ...).
NO_CONTROL_CHARACTERS = Cel(
    '!self.matches("\\\\p{Cc}")',
    "must not contain control characters (newline, tab, NUL, escape, ...)",
)

# A container image reference: [registry[:port]/]path[:tag][@algorithm:digest], as the
# distribution reference grammar has it (path components lowercase, tags 1-128 word chars).
IMAGE_REFERENCE_PATTERN = (
    r"^([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*"
    r"(:[0-9]+)?/)?"
    r"[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@[a-z0-9]+([-+._][a-z0-9]+)*:[a-fA-F0-9]{32,})?$"
)

ImageReference = Annotated[
    str,
    Field(min_length=1, max_length=512),
    NO_CONTROL_CHARACTERS,
    Cel(
        f'self.matches("{IMAGE_REFERENCE_PATTERN}")',
        "must be a container image reference such as registry.example.com/team/trainer:1.2 "
        "(optionally @sha256:<digest>)",
    ),
]

# Names the model server's process reads, or that change how any process loads code, finds
# files or reaches the network. The operator sets modelURIEnv and modelDigestEnv on a
# Deployment with its own rights; these must never be among them.
RESERVED_ENV_NAMES = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "HOSTNAME", "TMPDIR", "TMP", "TEMP",
    "TERM", "LANG", "LANGUAGE", "TZ", "IFS", "ENV", "BASH_ENV", "PS4", "PROMPT_COMMAND",
    "PORT", "POD_IP", "MODEL_NAME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)
RESERVED_ENV_PREFIXES = (
    "LD_", "LC_", "PYTHON", "KUBERNETES_", "AWS_", "SSL_", "HF_", "TRANSFORMERS_",
    "TOKENIZERS_", "TORCH", "TRITON_", "CUDA_", "NVIDIA_", "OMP_", "MKL_", "GLIBC_",
    "MALLOC_", "GCONV_", "BASH_FUNC_", "XDG_",
)
# WARMSTART_* configures the trainer and server themselves; only WARMSTART_MODEL_* (the
# defaults, WARMSTART_MODEL_URI and WARMSTART_MODEL_DIGEST) are the operator's to set.
RESERVED_ENV_REGEX = (
    "(?i)^((" + "|".join(RESERVED_ENV_NAMES) + ")$|(" + "|".join(RESERVED_ENV_PREFIXES) + "))"
)
RESERVED_ENV_RULE_TEXT = (
    "must not shadow the process environment: "
    + ", ".join(RESERVED_ENV_NAMES)
    + ", names beginning with "
    + ", ".join(RESERVED_ENV_PREFIXES)
    + " and WARMSTART_ (except WARMSTART_MODEL_) are refused, in any letter case"
)

ServingEnvName = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=ENV_VAR_NAME_PATTERN),
    Cel(
        f'!self.matches("{RESERVED_ENV_REGEX}") && (!self.matches("(?i)^WARMSTART_") || '
        'self.startsWith("WARMSTART_MODEL_"))',
        RESERVED_ENV_RULE_TEXT,
    ),
]

# Kubernetes qualified names (label keys, toleration keys, resource names): an optional DNS
# subdomain prefix and a name part of at most 63 characters.
QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61}[A-Za-z0-9]|[A-Za-z0-9])$"
)
QualifiedName = Annotated[str, Field(max_length=316, pattern=QUALIFIED_NAME_PATTERN)]

_KEYS_ARE_QUALIFIED_NAMES = Cel(
    f'self.all(key, key.matches("{QUALIFIED_NAME_PATTERN}"))',
    "keys must be qualified names such as cloud.example.com/gpu-type or memory",
)
LabelSelectorMap = Annotated[
    dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]],
    MaxProperties(32),
    _KEYS_ARE_QUALIFIED_NAMES,
]

# Text copied into the trainer's spec or the model's config (class names, JSON field names).
PlainText = Annotated[str, Field(min_length=1, max_length=256), NO_CONTROL_CHARACTERS]
ClassLabel = Annotated[str, Field(min_length=1, max_length=128), NO_CONTROL_CHARACTERS]
