{{/* The chart's name, for app.kubernetes.io/name. */}}
{{- define "warmstart.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: RELEASE-warmstart, or RELEASE alone when it already holds
the chart's name. 63 characters at most (a DNS label).
*/}}
{{- define "warmstart.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A Service name is a DNS label too: the suffix must fit in 63 characters. */}}
{{- define "warmstart.metricsServiceName" -}}
{{- printf "%s-metrics" (include "warmstart.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "warmstart.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pod; never change them on upgrade. */}}
{{- define "warmstart.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warmstart.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "warmstart.labels" -}}
helm.sh/chart: {{ include "warmstart.chart" . }}
{{ include "warmstart.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: warmstart
{{- end }}

{{- define "warmstart.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "warmstart.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is pinned. */}}
{{- define "warmstart.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "warmstart.trainerImage" -}}
{{- default (printf "ghcr.io/warmstart-dev/trainer:%s" .Chart.AppVersion) .Values.operator.trainer.image }}
{{- end }}

{{/*
RBAC rules the framework (Kopf) needs in every namespace it serves, for the resources the
operator's handlers are registered on. Kept apart from the application's rules, as Kopf's own
docs/deployment-rbac.yaml does.
*/}}
{{- define "warmstart.rbac.frameworkRules" -}}
# Kopf's watch streams behind @kopf.on.event and @kopf.index for both kinds.
- apiGroups: ["warmstart.dev"]
  resources: ["warmstartjobs", "modellineages"]
  verbs: ["list", "watch"]
# The operator registers no timers or deletion handlers, so Kopf adds no finalizer; it still
# removes the finalizer (kopf.zalando.org/KopfFinalizerMarker) that earlier releases, whose
# timers held one, left on existing objects, by a merge patch.
- apiGroups: ["warmstart.dev"]
  resources: ["warmstartjobs", "modellineages"]
  verbs: ["patch"]
# Kopf's watch stream behind @kopf.on.event for the training Jobs (a finished Job wakes its
# WarmStartJob at once instead of at the next timer tick).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch"]
{{- end }}

{{/*
RBAC rules the operator's own code needs (operator/warmstart_operator/kube.py is its only door
to the API; each rule names the calls that use it).
*/}}
{{- define "warmstart.rbac.applicationRules" -}}
# get: every reconcile re-reads its WarmStartJob; list: the per-lineage queue
# (maxActivePerLineage) and the schedule's history; create: scheduled runs
# (spec.retraining.schedule); delete: concurrencyPolicy Replace and history limits.
- apiGroups: ["warmstart.dev"]
  resources: ["warmstartjobs"]
  verbs: ["get", "list", "create", "delete"]
# get: every reconcile re-reads the ModelLineage it works on.
- apiGroups: ["warmstart.dev"]
  resources: ["modellineages"]
  verbs: ["get"]
# A WarmStartJob's status is written with merge patches.
- apiGroups: ["warmstart.dev"]
  resources: ["warmstartjobs/status"]
  verbs: ["patch"]
# A ModelLineage's status (the version index) is written read-modify-write with a PUT that
# carries the resourceVersion, so concurrent writers never lose each other's update.
- apiGroups: ["warmstart.dev"]
  resources: ["modellineages/status"]
  verbs: ["update"]
# The training Job and its ConfigMap name their WarmStartJob as owner with
# blockOwnerDeletion; where the OwnerReferencesPermissionEnforcement admission plugin is on
# (OpenShift, hardened clusters) that needs update on the owner's finalizers.
- apiGroups: ["warmstart.dev"]
  resources: ["warmstartjobs/finalizers"]
  verbs: ["update"]
# get: the Job of a WarmStartJob; create: the training run; patch: spec.suspend follows the
# WarmStartJob's.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "patch"]
# The training spec the trainer reads, created once beside its Job (never read back or
# changed: the name is deterministic and a second create is a harmless 409).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create"]
# The object-storage credentials named by a ModelLineage's spec.storage.secretRef, read to
# verify manifests. Only get: the operator never lists Secrets. Names are the users' choice,
# so resourceNames cannot narrow this; watchNamespaces can.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# A failed training Job's pods, listed by job-name label to quote the trainer's termination
# message in the WarmStartJob's Failed condition.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# The serving Deployment: get to check its container and follow the rollout; patch is a
# server-side apply (field manager warmstart-operator) of only the model env vars and the
# version annotation.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "patch"]
# An Event for every transition of both kinds (events.k8s.io/v1; best effort).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* The cluster-scoped rule Kopf needs in both modes. */}}
{{- define "warmstart.rbac.clusterRules" -}}
# Kopf watches CustomResourceDefinitions so that it serves WarmStartJob and ModelLineage as
# soon as their CRDs appear, also when they appear after the operator started (as in the
# install that creates both). Without it Kopf scans once at start-up and never again.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}
