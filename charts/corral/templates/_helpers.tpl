{{/* The release's full name, capped at 63 characters. */}}
{{- define "corral.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "corral.labels" -}}
app.kubernetes.io/name: corral
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: corral
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "corral.selectorLabels" -}}
app.kubernetes.io/name: corral
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "corral.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "corral.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "corral.image" -}}
{{- printf "%s:%s" .image.repository (default .appVersion .image.tag) -}}
{{- end -}}

{{/* The rules the operator needs, shared by the ClusterRole and the per-namespace Roles. */}}
{{- define "corral.rules" -}}
- apiGroups: [corral.dev]
  resources: [agents, personas, tools, mcpservers]
  verbs: [get, list, watch, patch]
- apiGroups: [corral.dev]
  resources: [agents/status, personas/status, tools/status, mcpservers/status]
  verbs: [get, patch]
# Children carry blockOwnerDeletion: clusters enforcing owner-reference permissions
# (OwnerReferencesPermissionEnforcement, e.g. OpenShift) require this to set it.
- apiGroups: [corral.dev]
  resources: [agents/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/* The runtime's OTEL_* variables as JSON: tracing.env, plus the endpoint when one is set. */}}
{{- define "corral.otelEnv" -}}
{{- $env := deepCopy (.env | default dict) -}}
{{- if .otlpEndpoint -}}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" .otlpEndpoint -}}
{{- end -}}
{{- $env | toJson -}}
{{- end -}}

{{- define "corral.consoleName" -}}
{{- printf "%s-console" (include "corral.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "corral.consoleLabels" -}}
{{ include "corral.labels" . | replace "app.kubernetes.io/component: operator" "app.kubernetes.io/component: console" }}
{{- end -}}

{{- define "corral.consoleSelectorLabels" -}}
app.kubernetes.io/name: corral
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: console
{{- end -}}

{{/* The console's rules: read-only by default; `console.rbac: edit` adds the forms' writes,
     the test chat (services/proxy) and the metrics snapshot (pods/proxy). */}}
{{- define "corral.consoleRules" -}}
- apiGroups: [corral.dev]
  resources: [agents, personas, tools, mcpservers]
  verbs: [get, list, watch{{ if eq .Values.console.rbac "edit" }}, create, patch{{ end }}]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods, services]
  verbs: [get, list, watch]
{{- if eq .Values.console.rbac "edit" }}
- apiGroups: [""]
  resources: [services/proxy]
  verbs: [get, create]
- apiGroups: [""]
  resources: [pods/proxy]
  verbs: [get]
{{- end }}
{{- end -}}
