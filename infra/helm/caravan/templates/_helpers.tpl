{{/* Names and labels. */}}
{{- define "caravan.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "caravan.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "caravan.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "caravan.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "caravan.secretName" -}}
{{- required "secrets.existingSecret: name the Secret that holds SECRET_KEY, DOCUMENT_KEYS, DOCUMENT_HASH_KEY, DATABASE_URL and REDIS_URL" .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The non-secret environment: the ConfigMap's data, and the migration Job's env (hooks run
     before the ConfigMap exists on a first install). */}}
{{- define "caravan.config" -}}
{{- $domain := required "platformDomain is required" .Values.platformDomain -}}
{{- if not (has .Values.database.pooling (list "session" "transaction")) -}}
{{- fail "database.pooling must be session or transaction" -}}
{{- end -}}
{{- $config := dict
      "PLATFORM_DOMAIN" $domain
      "PLATFORM_SCHEME" .Values.platformScheme
      "PLATFORM_PORT" ""
      "PROXY_COUNT" "1"
      "CSRF_TRUSTED_ORIGINS" (printf "%s://*.%s,%s://%s" .Values.platformScheme $domain .Values.platformScheme $domain)
      "DATABASE_POOLING" .Values.database.pooling -}}
{{- range $key, $value := .Values.config }}{{ $_ := set $config $key (toString $value) }}{{ end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Secret keys as environment variables (secretKeyRef). */}}
{{- define "caravan.secretEnv" -}}
{{- $secret := include "caravan.secretName" . -}}
{{- range .Values.secrets.required }}
- name: {{ . }}
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ . }}}
{{- end }}
{{- range .Values.secrets.optional }}
- name: {{ . }}
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ . }}, optional: true}
{{- end }}
{{- end -}}

{{/* What every Caravan container shares: image, env, volumes, security. */}}
{{- define "caravan.container" -}}
image: {{ include "caravan.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
args: [{{ .command | quote }}]
envFrom:
  - configMapRef: {name: {{ include "caravan.fullname" .root }}}
env:
{{- include "caravan.secretEnv" .root | nindent 2 }}
{{- range $key, $value := .env }}
  - name: {{ $key }}
    value: {{ $value | toString | quote }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
volumeMounts:
  - {name: data, mountPath: /data}
  - {name: tmp, mountPath: /tmp}
{{- end -}}

{{- define "caravan.volumes" -}}
- name: data
{{- if and .persistence .root.Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ .root.Values.persistence.existingClaim | default (printf "%s-data" (include "caravan.fullname" .root)) }}
{{- else }}
  emptyDir: {}
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "caravan.podSpec" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
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
{{- end -}}
