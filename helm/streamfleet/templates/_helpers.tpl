{{/*
Names, labels, images, secrets and the pieces of pod specs every component shares.
*/}}

{{- define "streamfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "streamfleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "streamfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "api") */}}
{{- define "streamfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "streamfleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component's objects: (dict "root" $ "component" "api") */}}
{{- define "streamfleet.labels" -}}
helm.sh/chart: {{ include "streamfleet.chart" .root }}
{{ include "streamfleet.selectorLabels" . }}
app.kubernetes.io/part-of: streamfleet
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* The image of the chart: repository:tag */}}
{{- define "streamfleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "streamfleet.imageTag" .) }}
{{- end }}

{{- define "streamfleet.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* Secret holding what the chart generates or copies from values. */}}
{{- define "streamfleet.secretName" -}}
{{- include "streamfleet.fullname" . }}
{{- end }}

{{- define "streamfleet.configMapName" -}}
{{- include "streamfleet.fullname" . }}
{{- end }}

{{- define "streamfleet.postgresql.host" -}}
{{- printf "%s-postgresql" (include "streamfleet.fullname" .) }}
{{- end }}

{{- define "streamfleet.redis.host" -}}
{{- printf "%s-redis" (include "streamfleet.fullname" .) }}
{{- end }}

{{/*
Where DATABASE_URL and REDIS_URL come from. Exactly one source each: bundled, an existing
Secret, or a URL the chart puts into its own Secret.
*/}}
{{- define "streamfleet.postgresql.source" -}}
{{- $pg := .Values.postgresql }}
{{- $given := list }}
{{- if $pg.bundled.enabled }}{{ $given = append $given "bundled" }}{{ end }}
{{- if $pg.external.existingSecret }}{{ $given = append $given "existingSecret" }}{{ end }}
{{- if $pg.external.url }}{{ $given = append $given "url" }}{{ end }}
{{- if ne (len $given) 1 }}
{{- fail (printf "postgresql: choose exactly one of postgresql.bundled.enabled, postgresql.external.existingSecret or postgresql.external.url (given: %s)" (join ", " $given | default "none")) }}
{{- end }}
{{- first $given }}
{{- end }}

{{- define "streamfleet.redis.source" -}}
{{- $r := .Values.redis }}
{{- $given := list }}
{{- if $r.bundled.enabled }}{{ $given = append $given "bundled" }}{{ end }}
{{- if $r.external.existingSecret }}{{ $given = append $given "existingSecret" }}{{ end }}
{{- if $r.external.url }}{{ $given = append $given "url" }}{{ end }}
{{- if ne (len $given) 1 }}
{{- fail (printf "redis: choose exactly one of redis.bundled.enabled, redis.external.existingSecret or redis.external.url (given: %s)" (join ", " $given | default "none")) }}
{{- end }}
{{- first $given }}
{{- end }}

{{/* The Secret the hook Job (templates/generated-secret.yaml) makes once and never changes. */}}
{{- define "streamfleet.generatedSecretName" -}}
{{- printf "%s-generated" (include "streamfleet.fullname" .) }}
{{- end }}

{{/*
What the chart generates rather than renders, as JSON: {"keys": {NAME: length}, "derived":
{NAME: template}} for every secret value the values do not give. Nothing random is rendered:
`helm template` (Argo CD, Flux) gives the same objects every time.
*/}}
{{- define "streamfleet.generated" -}}
{{- $keys := dict }}
{{- $derived := dict }}
{{- if not .Values.secrets.existingSecret }}
{{- if not .Values.secrets.adminPassword }}{{ $_ := set $keys "STREAMFLEET_ADMIN_PASSWORD" 24 }}{{ end }}
{{- if not .Values.secrets.jwtSecret }}{{ $_ := set $keys "STREAMFLEET_JWT_SECRET" 48 }}{{ end }}
{{- if not .Values.secrets.metricsToken }}{{ $_ := set $keys "STREAMFLEET_METRICS_TOKEN" 32 }}{{ end }}
{{- end }}
{{- $pg := .Values.postgresql.bundled }}
{{- if and (eq (include "streamfleet.postgresql.source" .) "bundled") (not $pg.password) }}
{{- $_ := set $keys "POSTGRES_PASSWORD" 32 }}
{{- $_ := set $derived "DATABASE_URL" (printf "postgresql://%s:{POSTGRES_PASSWORD}@%s:5432/%s" (urlquery $pg.username) (include "streamfleet.postgresql.host" .) $pg.database) }}
{{- end }}
{{- if and (eq (include "streamfleet.redis.source" .) "bundled") (not .Values.redis.bundled.password) }}
{{- $_ := set $keys "REDIS_PASSWORD" 32 }}
{{- $_ := set $derived "REDIS_URL" (printf "redis://:{REDIS_PASSWORD}@%s:6379/0" (include "streamfleet.redis.host" .)) }}
{{- end }}
{{- toJson (dict "keys" $keys "derived" $derived) }}
{{- end }}

{{/* The Secret that holds `key`: (list root key). The chart's own when the values give it, the
     operator's existingSecret for the application's secrets, else the generated one. */}}
{{- define "streamfleet.secretOf" -}}
{{- $root := index . 0 }}
{{- $key := index . 1 }}
{{- $data := include "streamfleet.secretData" $root | fromJson }}
{{- $generated := include "streamfleet.generated" $root | fromJson }}
{{- if hasKey $data $key }}
{{- include "streamfleet.secretName" $root }}
{{- else if or (hasKey $generated.keys $key) (hasKey $generated.derived $key) }}
{{- include "streamfleet.generatedSecretName" $root }}
{{- else }}
{{- include "streamfleet.appSecretName" $root }}
{{- end }}
{{- end }}

{{/*
The data of the chart's Secret, as JSON (plain values): only what the values give. What they
do not give is generated once by the hook Job, into the generated Secret (see above).
*/}}
{{- define "streamfleet.secretData" -}}
{{- $data := dict }}
{{- if not .Values.secrets.existingSecret }}
{{- with .Values.secrets.adminPassword }}{{ $_ := set $data "STREAMFLEET_ADMIN_PASSWORD" . }}{{ end }}
{{- with .Values.secrets.jwtSecret }}{{ $_ := set $data "STREAMFLEET_JWT_SECRET" . }}{{ end }}
{{- with .Values.secrets.metricsToken }}{{ $_ := set $data "STREAMFLEET_METRICS_TOKEN" . }}{{ end }}
{{- with .Values.secrets.flowerBasicAuth }}{{ $_ := set $data "STREAMFLEET_FLOWER_BASIC_AUTH" . }}{{ end }}
{{- end }}
{{- $pgSource := include "streamfleet.postgresql.source" . }}
{{- $pg := .Values.postgresql.bundled }}
{{- if and (eq $pgSource "bundled") $pg.password }}
{{- $_ := set $data "POSTGRES_PASSWORD" $pg.password }}
{{- $_ := set $data "DATABASE_URL" (printf "postgresql://%s:%s@%s:5432/%s" (urlquery $pg.username) (urlquery $pg.password) (include "streamfleet.postgresql.host" .) $pg.database) }}
{{- else if eq $pgSource "url" }}
{{- $_ := set $data "DATABASE_URL" .Values.postgresql.external.url }}
{{- end }}
{{- $redisSource := include "streamfleet.redis.source" . }}
{{- $password := .Values.redis.bundled.password }}
{{- if and (eq $redisSource "bundled") $password }}
{{- $_ := set $data "REDIS_PASSWORD" $password }}
{{- $_ := set $data "REDIS_URL" (printf "redis://:%s@%s:6379/0" (urlquery $password) (include "streamfleet.redis.host" .)) }}
{{- else if eq $redisSource "url" }}
{{- $_ := set $data "REDIS_URL" .Values.redis.external.url }}
{{- end }}
{{- toJson $data }}
{{- end }}

{{/*
Pod annotations that roll pods when the settings or the values they read from the chart's Secret
change: (dict "root" $ "keys" (list "DATABASE_URL" ...)). Rotating the administrator's password
restarts the API, not every worker (a worker restart moves its live streams).
*/}}
{{- define "streamfleet.checksums" -}}
{{- $data := include "streamfleet.secretData" .root | fromJson }}
{{- $used := dict }}
{{- range .keys }}
{{- if hasKey $data . }}{{ $_ := set $used . (index $data .) }}{{ end }}
{{- end -}}
checksum/config: {{ toJson .root.Values.config | sha256sum }}
checksum/secret: {{ toJson $used | sha256sum }}
{{- end }}

{{/* A value for an environment variable: whole numbers without an exponent (2592000, not
     2.592e+06, which is how Helm prints the float64 its values files hold). */}}
{{- define "streamfleet.envValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) }}{{ int64 . }}{{ else }}{{ toString . }}{{ end }}
{{- end }}

{{/* Secret references: (list root "name") */}}
{{- define "streamfleet.database.secretRef" -}}
{{- if eq (include "streamfleet.postgresql.source" .) "existingSecret" -}}
name: {{ .Values.postgresql.external.existingSecret }}
key: {{ .Values.postgresql.external.existingSecretKey }}
{{- else -}}
name: {{ include "streamfleet.secretOf" (list . "DATABASE_URL") }}
key: DATABASE_URL
{{- end }}
{{- end }}

{{- define "streamfleet.redis.secretRef" -}}
{{- if eq (include "streamfleet.redis.source" .) "existingSecret" -}}
name: {{ .Values.redis.external.existingSecret }}
key: {{ .Values.redis.external.existingSecretKey }}
{{- else -}}
name: {{ include "streamfleet.secretOf" (list . "REDIS_URL") }}
key: REDIS_URL
{{- end }}
{{- end }}

{{- define "streamfleet.appSecretName" -}}
{{- default (include "streamfleet.secretName" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* env entries, always from Secrets */}}
{{- define "streamfleet.env.database" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "streamfleet.database.secretRef" . | nindent 6 }}
{{- end }}

{{- define "streamfleet.env.redis" -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- include "streamfleet.redis.secretRef" . | nindent 6 }}
{{- end }}

{{- define "streamfleet.env.adminPassword" -}}
- name: STREAMFLEET_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "streamfleet.secretOf" (list . "STREAMFLEET_ADMIN_PASSWORD") }}
      key: STREAMFLEET_ADMIN_PASSWORD
{{- end }}

{{- define "streamfleet.env.jwtSecret" -}}
- name: STREAMFLEET_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "streamfleet.secretOf" (list . "STREAMFLEET_JWT_SECRET") }}
      key: STREAMFLEET_JWT_SECRET
{{- end }}

{{- define "streamfleet.env.metricsToken" -}}
- name: STREAMFLEET_METRICS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "streamfleet.secretOf" (list . "STREAMFLEET_METRICS_TOKEN") }}
      key: STREAMFLEET_METRICS_TOKEN
      optional: true
{{- end }}

{{- define "streamfleet.env.flowerBasicAuth" -}}
{{- if or .Values.secrets.flowerBasicAuth .Values.secrets.existingSecret }}
- name: STREAMFLEET_FLOWER_BASIC_AUTH
  valueFrom:
    secretKeyRef:
      name: {{ include "streamfleet.appSecretName" . }}
      key: STREAMFLEET_FLOWER_BASIC_AUTH
      optional: true
{{- end }}
{{- end }}

{{/* envFrom: the non-secret settings */}}
{{- define "streamfleet.envFrom" -}}
- configMapRef:
    name: {{ include "streamfleet.configMapName" . }}
{{- end }}

{{/* Pod-level fields shared by the chart's pods: (dict "root" $ "values" .Values.api
     "component" "api"), and optionally "serviceAccount" (a token is mounted only then) and
     "priorityClass" (the values' priorityClassName, when empty). */}}
{{- define "streamfleet.podCommon" -}}
{{- $root := .root -}}
automountServiceAccountToken: {{ not (empty .serviceAccount) }}
{{- with (.serviceAccount | default $root.Values.serviceAccountName) }}
serviceAccountName: {{ . }}
{{- end }}
{{- with (.values.priorityClassName | default .priorityClass) }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
{{- $selector := include "streamfleet.selectorLabels" (dict "root" $root "component" $.component) | fromYaml }}
{{- $constraints := list }}
{{- range . }}
{{- $constraints = append $constraints (ternary . (merge (dict "labelSelector" (dict "matchLabels" $selector)) .) (hasKey . "labelSelector")) }}
{{- end }}
topologySpreadConstraints:
  {{- toYaml $constraints | nindent 2 }}
{{- end }}
{{- end }}

{{/* The writable scratch directory (`--data-dir /tmp/streamfleet`): the root is read-only. */}}
{{- define "streamfleet.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "streamfleet.tmpVolume" -}}
- name: tmp
  emptyDir: {}
{{- end }}

{{/* Extended resources (vendor/name) must be limits equal to requests: say so at render time. */}}
{{- define "streamfleet.checkExtendedResources" -}}
{{- $what := .what }}
{{- $requests := .resources.requests | default dict }}
{{- $limits := .resources.limits | default dict }}
{{- range $name, $amount := $requests }}
{{- if contains "/" $name }}
{{- if not (hasKey $limits $name) }}
{{- fail (printf "%s: %s is an extended resource: set it in resources.limits too (equal to the request)" $what $name) }}
{{- end }}
{{- if ne (toString (index $limits $name)) (toString $amount) }}
{{- fail (printf "%s: resources.requests and resources.limits of %s must be equal" $what $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Migrations. A database this release does not create is migrated by a hook Job before install
and before every upgrade. The bundled PostgreSQL exists only once the release is installed, so
then the API pods migrate it in an init container at install (no post-install hook: `--wait` and
Argo CD would wait forever for an API that needs the schema), and the Job runs before upgrades.
*/}}
{{- define "streamfleet.migrations.hook" -}}
{{- if eq (include "streamfleet.postgresql.source" .) "bundled" -}}
pre-upgrade
{{- else -}}
pre-install,pre-upgrade
{{- end }}
{{- end }}

{{- define "streamfleet.migrations.secretName" -}}
{{- printf "%s-migrate" (include "streamfleet.fullname" .) }}
{{- end }}

{{/* DATABASE_URL for the migration Job: it may run before the release's own Secret exists. */}}
{{- define "streamfleet.migrations.env" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if eq (include "streamfleet.postgresql.source" .) "url" }}
      name: {{ include "streamfleet.migrations.secretName" . }}
      key: DATABASE_URL
      {{- else }}
      {{- include "streamfleet.database.secretRef" . | nindent 6 }}
      {{- end }}
{{- end }}

{{/* The migration container (hook Job, or the API's init container for bundled PostgreSQL). */}}
{{- define "streamfleet.migrations.container" -}}
- name: migrate
  image: {{ include "streamfleet.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["migrate", "--data-dir", "/tmp/streamfleet"]
  env:
    {{- include "streamfleet.migrations.env" . | nindent 4 }}
  resources:
    {{- toYaml .Values.migrations.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  {{- with .Values.migrations.extraEnvFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    {{- include "streamfleet.tmpVolumeMount" . | nindent 4 }}
    {{- with .Values.migrations.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
