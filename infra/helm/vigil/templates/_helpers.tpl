{{/* Names, labels and the pod spec every Vigil process shares. */}}

{{- define "vigil.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vigil.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: vigil
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of one workload: (dict "root" $ "component" "worker" "instance" "vitals") */}}
{{- define "vigil.selectorLabels" -}}
app.kubernetes.io/name: vigil
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
vigil.io/workload: {{ .instance }}
{{- end -}}

{{/* The values key of each component's ServiceAccount. */}}
{{- define "vigil.serviceAccountKey" -}}
{{- get (dict "gateway" "gateway" "worker" "worker" "sink" "sink" "checkpoint-signer" "checkpointSigner" "drift-guard" "driftGuard") . -}}
{{- end -}}

{{/* One component's ServiceAccount name: (dict "root" $ "component" "worker") */}}
{{- define "vigil.serviceAccountName" -}}
{{- $account := get .root.Values.serviceAccount (include "vigil.serviceAccountKey" .component) -}}
{{- required (printf "serviceAccount.%s.name" (include "vigil.serviceAccountKey" .component)) $account.name -}}
{{- end -}}

{{- define "vigil.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/*
One Vigil Deployment. (dict "root" $ "component" "worker" "instance" "vitals" "name" "<object name>"
  "args" (list ...) "replicas" n "metricsPort" p "readinessPath" "/readyz" "resources" {...}
  "secretMounts" (list (dict "secretName" s "mountPath" m ["items" (list key...)])) "ports" (list (dict "name" n "port" p))
  "terminationGracePeriodSeconds" s "strategy" "RollingUpdate|Recreate" "withReplicas" bool)
*/}}
{{- define "vigil.deployment" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $selector := include "vigil.selectorLabels" (dict "root" $root "component" .component "instance" .instance) -}}
{{- $secretMounts := concat $values.secretFiles (include "vigil.connectionMounts" $root | fromYamlArray) (default (list) .secretMounts) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels:
    {{- include "vigil.labels" $root | nindent 4 }}
    {{- $selector | nindent 4 }}
spec:
  {{- if .withReplicas }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  strategy:
    {{- if eq (default "RollingUpdate" .strategy) "Recreate" }}
    type: Recreate
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      # One new pod at a time, and no old pod stopped until the new one is ready (its state restored).
      maxSurge: 1
      maxUnavailable: 0
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "vigil.labels" $root | nindent 8 }}
        {{- $selector | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if .metricsPort }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ .metricsPort | quote }}
        {{- end }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "vigil.serviceAccountName" (dict "root" $root "component" .component) }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ default 30 .terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $values.podSecurityContext | nindent 8 }}
      {{- with $values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $values.spreadAcrossZones }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- $selector | nindent 14 }}
      {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "vigil.image" $root | quote }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
          envFrom:
            - configMapRef:
                name: {{ include "vigil.fullname" $root }}-env
          {{- if .metricsPort }}
          env:
            - name: VIGIL_HEALTH_PORT
              value: {{ .metricsPort | quote }}
          {{- end }}
          {{- if or .ports .metricsPort }}
          ports:
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
            {{- if .metricsPort }}
            - name: metrics
              containerPort: {{ .metricsPort }}
              protocol: TCP
            {{- end }}
          {{- end }}
          {{- if .metricsPort }}
          startupProbe:
            httpGet: { path: /healthz, port: metrics }
            periodSeconds: {{ $values.probes.startup.periodSeconds }}
            failureThreshold: {{ $values.probes.startup.failureThreshold }}
          livenessProbe:
            httpGet: { path: /healthz, port: metrics }
            periodSeconds: {{ $values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $values.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet: { path: {{ default "/readyz" .readinessPath }}, port: metrics }
            periodSeconds: {{ $values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $values.probes.readiness.failureThreshold }}
          {{- end }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- toYaml $values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: state
              mountPath: /app/.vigil
            {{- range $i, $s := $secretMounts }}
            - name: secret-{{ $i }}
              mountPath: {{ $s.mountPath }}
              readOnly: true
            {{- end }}
      volumes:
        # tsx's compile cache
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        # default key and store folders; nothing here outlives the pod
        - name: state
          emptyDir:
            sizeLimit: 64Mi
        {{- range $i, $s := $secretMounts }}
        - name: secret-{{ $i }}
          secret:
            secretName: {{ $s.secretName }}
            defaultMode: 0440
            {{- with $s.items }}
            # Only these keys: anything else the Secret holds stays out of the pod.
            items:
              {{- range . }}
              - key: {{ . }}
                path: {{ . }}
              {{- end }}
            {{- end }}
        {{- end }}
{{- end -}}

{{/* A PodDisruptionBudget for one workload: (dict "root" $ "component" c "instance" i "name" n "pdb" {...}) */}}
{{- define "vigil.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels:
    {{- include "vigil.labels" .root | nindent 4 }}
spec:
  maxUnavailable: {{ .pdb.maxUnavailable }}
  # A pod not ready yet (restoring state) may still be evicted, so a stuck restore never blocks a node drain.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "vigil.selectorLabels" (dict "root" .root "component" .component "instance" .instance) | nindent 6 }}
{{- end -}}

{{/*
A KEDA ScaledObject on consumer-group lag, bounded by the partition count:
(dict "root" $ "name" n "group" g "topics" (list ...) "partitions" p "min" m "lagThreshold" l "defaults" {...})
*/}}
{{- define "vigil.scaledObject" -}}
{{- $root := .root -}}
{{- $prefix := $root.Values.topicPrefix -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ .name }}
  labels:
    {{- include "vigil.labels" $root | nindent 4 }}
spec:
  scaleTargetRef:
    name: {{ .name }}
  minReplicaCount: {{ .min }}
  # No consumer beyond the partition count gets a partition.
  maxReplicaCount: {{ .partitions }}
  pollingInterval: {{ .defaults.pollingInterval }}
  cooldownPeriod: {{ .defaults.cooldownPeriod }}
  # Every change of a group's size is a rebalance, and every moved partition restores its state: scale up at once,
  # scale down one pod at a time after the lag has stayed low for a while.
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: {{ .defaults.scaleDownStabilizationSeconds }}
          policies:
            - type: Pods
              value: 1
              periodSeconds: {{ .defaults.scaleDownStabilizationSeconds }}
  triggers:
    {{- range .topics }}
    - type: kafka
      metadata:
        bootstrapServers: {{ $root.Values.endpoints.kafkaBrokers | quote }}
        consumerGroup: {{ $.group | quote }}
        topic: {{ (ternary (printf "%s.%s" $prefix .) . (ne $prefix "")) | quote }}
        lagThreshold: {{ $.lagThreshold | quote }}
        offsetResetPolicy: earliest
        allowIdleConsumers: "false"
        {{- range $k, $v := merge (dict) $root.Values.keda.triggerMetadata (include "vigil.kedaKafkaMetadata" $root | fromYaml) }}
        {{ $k }}: {{ $v | quote }}
        {{- end }}
      {{- with include "vigil.kedaAuthName" $root }}
      authenticationRef:
        name: {{ . }}
      {{- end }}
    {{- end }}
{{- end -}}


{{- define "vigil.connectionsDir" -}}/var/run/secrets/vigil/connections{{- end -}}

{{/*
The Secrets behind connections.files, each once, as secretMounts entries (a YAML list: fromYamlArray reads it).
Only the keys the settings name are mounted.
*/}}
{{- define "vigil.connectionMounts" -}}
{{- $keys := dict -}}
{{- range .Values.connections.files -}}
{{- $_ := set $keys .secretName (append (default (list) (get $keys .secretName)) .key) -}}
{{- end -}}
{{- range $secret, $items := $keys }}
- secretName: {{ $secret | quote }}
  mountPath: {{ printf "%s/%s" (include "vigil.connectionsDir" $) $secret | quote }}
  items: {{ $items | uniq | toJson }}
{{- end -}}
{{- end -}}

{{/* The Kafka SASL password's connections.files entry, as YAML ({} when there is none). */}}
{{- define "vigil.kafkaPasswordFile" -}}
{{- range .Values.connections.files }}
{{- if eq .setting "KAFKA_SASL_PASSWORD_FILE" }}
{{- toYaml . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
KEDA reads the lag with the workers' own Kafka credentials when they are SCRAM with a password file: the chart
renders a TriggerAuthentication from the same Secret (vigil.kedaAuthName), unless keda.triggerAuthentication names one.
*/}}
{{- define "vigil.kedaScram" -}}
{{- $mechanism := default "" .Values.connections.settings.KAFKA_SASL_MECHANISM -}}
{{- if and (not .Values.keda.triggerAuthentication) (hasPrefix "SCRAM-" $mechanism) (include "vigil.kafkaPasswordFile" .) -}}
{{- replace "SCRAM-SHA-" "scram_sha" $mechanism -}}
{{- end -}}
{{- end -}}

{{- define "vigil.kedaAuthName" -}}
{{- if .Values.keda.triggerAuthentication -}}
{{- .Values.keda.triggerAuthentication -}}
{{- else if include "vigil.kedaScram" . -}}
{{- printf "%s-kafka" (include "vigil.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Trigger metadata that follows the connection settings (keda.triggerMetadata wins). */}}
{{- define "vigil.kedaKafkaMetadata" -}}
{{- with include "vigil.kedaScram" . }}
sasl: {{ . }}
{{- end }}
{{- if has (default "" .Values.connections.settings.KAFKA_SECURITY_PROTOCOL) (list "SSL" "SASL_SSL") }}
tls: enable
{{- end }}
{{- end -}}
