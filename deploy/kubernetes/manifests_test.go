// Package kubernetes_test checks the manifests in this directory against the service's contract:
// every document parses (strictly) into its Kubernetes type, and the Deployment, Service,
// PodDisruptionBudget and NetworkPolicy agree with each other and with what the binary needs.
package kubernetes_test

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const (
	containerName = "dontinterrupt"
	containerPort = 8080
	nonRootUser   = 65532
)

type manifests struct {
	files        []string // every *.yaml file
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
	netpols      []*networkingv1.NetworkPolicy
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	kustomize    bool
	kustomizeRes []string
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func load(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no manifests found")
	}
	m := &manifests{files: files, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			where := f + " (" + tm.Kind + ")"
			switch tm.APIVersion + "/" + tm.Kind {
			case "apps/v1/Deployment":
				m.deployments = append(m.deployments, decode[appsv1.Deployment](t, where, doc))
			case "v1/Service":
				m.services = append(m.services, decode[corev1.Service](t, where, doc))
			case "policy/v1/PodDisruptionBudget":
				m.pdbs = append(m.pdbs, decode[policyv1.PodDisruptionBudget](t, where, doc))
			case "networking.k8s.io/v1/NetworkPolicy":
				m.netpols = append(m.netpols, decode[networkingv1.NetworkPolicy](t, where, doc))
			case "v1/ConfigMap":
				cm := decode[corev1.ConfigMap](t, where, doc)
				m.configMaps[cm.Name] = cm
			case "v1/Secret":
				s := decode[corev1.Secret](t, where, doc)
				m.secrets[s.Name] = s
			case "kustomize.config.k8s.io/v1beta1/Kustomization":
				var k struct {
					Resources []string `json:"resources"`
				}
				if err := yaml.Unmarshal([]byte(doc), &k); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				m.kustomizeRes = k.Resources
				m.kustomize = true
				continue
			default:
				t.Fatalf("%s: unexpected kind %s/%s (teach this test about it)", f, tm.APIVersion, tm.Kind)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// decode parses strictly: an unknown or misspelt field is an error, not silently dropped.
func decode[T any](t *testing.T, where, doc string) *T {
	t.Helper()
	v := new(T)
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	// Namespace-agnostic: `kubectl apply -n` or kustomize picks the namespace.
	if ns := objectMeta(v).Namespace; ns != "" {
		t.Errorf("%s: sets namespace %q; the manifests must be namespace-agnostic", where, ns)
	}
	return v
}

func objectMeta(v any) metav1.ObjectMeta {
	switch o := v.(type) {
	case *appsv1.Deployment:
		return o.ObjectMeta
	case *corev1.Service:
		return o.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return o.ObjectMeta
	case *networkingv1.NetworkPolicy:
		return o.ObjectMeta
	case *corev1.ConfigMap:
		return o.ObjectMeta
	case *corev1.Secret:
		return o.ObjectMeta
	}
	return metav1.ObjectMeta{}
}

func (m *manifests) deployment(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	if len(m.deployments) != 1 {
		t.Fatalf("want exactly one Deployment, got %d", len(m.deployments))
	}
	d := m.deployments[0]
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == containerName {
			return d, c
		}
	}
	t.Fatalf("Deployment %s has no container %q", d.Name, containerName)
	return nil, nil
}

// podLabels are the labels of the Deployment's pods; the selector must match them.
func podLabels(t *testing.T, d *appsv1.Deployment) labels.Set {
	t.Helper()
	set := labels.Set(d.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(set) {
		t.Fatalf("Deployment selector %v does not match its pod labels %v (%v)", d.Spec.Selector, set, err)
	}
	return set
}

func selects(t *testing.T, what string, s *metav1.LabelSelector, pods labels.Set) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if sel.Empty() || !sel.Matches(pods) {
		t.Errorf("%s: selector %v does not select the Deployment's pods %v", what, s, pods)
	}
}

// portNumber resolves a probe or Service port (number or name) against the container.
func portNumber(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

func ptrString(p *int32) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(int(*p))
}

func envValue(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

func TestEveryManifestParses(t *testing.T) {
	m := load(t)
	if len(m.deployments) == 0 || len(m.services) == 0 || len(m.pdbs) == 0 || len(m.netpols) == 0 {
		t.Fatalf("want a Deployment, Service, PodDisruptionBudget and NetworkPolicy; got %d, %d, %d, %d",
			len(m.deployments), len(m.services), len(m.pdbs), len(m.netpols))
	}
}

func TestContainerPortAndProbes(t *testing.T) {
	_, c := load(t).deployment(t)
	if i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == containerPort }); i < 0 {
		t.Fatalf("container ports %v do not include %d", c.Ports, containerPort)
	}
	if addr, ok := envValue(c, "DI_ADDR"); !ok || !strings.HasSuffix(addr, ":8080") || strings.HasPrefix(addr, "127.") {
		t.Errorf("DI_ADDR = %q; want it to listen on :8080 on every interface", addr)
	}
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET on %s", p.name, p.path)
			continue
		}
		if got := p.probe.HTTPGet.Path; got != p.path {
			t.Errorf("%s probe path = %q, want %q", p.name, got, p.path)
		}
		if got := portNumber(c, p.probe.HTTPGet.Port); got != containerPort {
			t.Errorf("%s probe port %v resolves to %d, want %d", p.name, p.probe.HTTPGet.Port.String(), got, containerPort)
		}
	}
	if p := c.StartupProbe; p != nil && (p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || portNumber(c, p.HTTPGet.Port) != containerPort) {
		t.Errorf("startup probe must GET /healthz on %d", containerPort)
	}
}

func TestReplicasAndSpread(t *testing.T) {
	d, _ := load(t).deployment(t)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		t.Errorf("replicas = %s, want ≥ 3", ptrString(d.Spec.Replicas))
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update should keep every replica (maxUnavailable 0)")
	}
	pods := podLabels(t, d)
	keys := map[string]bool{}
	for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
		selects(t, "topologySpreadConstraint "+c.TopologyKey, c.LabelSelector, pods)
		if c.MaxSkew != 1 {
			t.Errorf("topologySpreadConstraint %s: maxSkew %d, want 1", c.TopologyKey, c.MaxSkew)
		}
		keys[c.TopologyKey] = true
		if c.TopologyKey == corev1.LabelTopologyZone && c.WhenUnsatisfiable != corev1.DoNotSchedule {
			t.Errorf("zone spread must be DoNotSchedule, got %s", c.WhenUnsatisfiable)
		}
	}
	for _, k := range []string{corev1.LabelTopologyZone, corev1.LabelHostname} {
		if !keys[k] {
			t.Errorf("no topologySpreadConstraint on %s", k)
		}
	}
}

func TestNonRoot(t *testing.T) {
	d, _ := load(t).deployment(t)
	spec := d.Spec.Template.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != nonRootUser {
		t.Errorf("pod securityContext must set runAsNonRoot and runAsUser %d", nonRootUser)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("the service does not talk to the API server: automountServiceAccountToken must be false")
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("container %s: no securityContext", c.Name)
			continue
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("container %s: runAsNonRoot must be true", c.Name)
		case sc.RunAsUser == nil || *sc.RunAsUser == 0:
			t.Errorf("container %s: runAsUser must be a non-root user", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s: privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: capabilities must drop ALL and add none", c.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
			if req.IsZero() || lim.IsZero() {
				t.Errorf("container %s: %s request and limit must both be set", c.Name, r)
			} else if req.Cmp(lim) > 0 {
				t.Errorf("container %s: %s request %s above limit %s", c.Name, r, req.String(), lim.String())
			}
		}
	}
}

// TestKeyset: DI_KEYSET_FILE names a file the container sees, and that file comes from the keyset
// Secret with a mode the service accepts (it refuses mode & 0077 != 0). Mounted directly, the
// Secret volume's mode must be 0400 or 0600 and no fsGroup may widen it; copied by an init
// container into an emptyDir, the copy must be chmod 0400 or 0600.
func TestKeyset(t *testing.T) {
	m := load(t)
	d, c := m.deployment(t)
	spec := d.Spec.Template.Spec
	file, ok := envValue(c, "DI_KEYSET_FILE")
	if !ok || !path.IsAbs(file) {
		t.Fatalf("DI_KEYSET_FILE = %q; want an absolute path", file)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	mount, ok := mountFor(c, file)
	if !ok {
		t.Fatalf("no volume of container %s is mounted where DI_KEYSET_FILE (%s) points", c.Name, file)
	}
	vol := volumes[mount.Name]
	rel := strings.TrimPrefix(strings.TrimPrefix(file, mount.MountPath), "/")
	switch {
	case vol.Secret != nil:
		checkKeysetSecret(t, m, vol.Secret, rel)
		mode := vol.Secret.DefaultMode
		for _, it := range vol.Secret.Items {
			if it.Path == rel && it.Mode != nil {
				mode = it.Mode
			}
		}
		if mode == nil || (*mode != 0o400 && *mode != 0o600) {
			t.Errorf("keyset Secret volume mode %v, want 0400 or 0600", mode)
		}
		if sc := spec.SecurityContext; sc != nil && sc.FSGroup != nil {
			t.Errorf("fsGroup makes kubelet add group read to the mounted keyset, which the service refuses")
		}
	case vol.EmptyDir != nil:
		// An init container must copy it there from the keyset Secret.
		var found bool
		for _, ic := range spec.InitContainers {
			dst, ok := mountFor(&ic, file)
			if !ok || dst.Name != mount.Name || dst.ReadOnly {
				continue
			}
			script := strings.Join(append(slices.Clone(ic.Command), ic.Args...), " ")
			if !strings.Contains(script, file) || !regexp.MustCompile(`chmod 0?[46]00 `+regexp.QuoteMeta(file)).MatchString(script) {
				t.Errorf("init container %s: want it to copy the keyset to %s and chmod it 0400: %q", ic.Name, file, script)
			}
			for _, im := range ic.VolumeMounts {
				src := volumes[im.Name]
				if src.Secret == nil {
					continue
				}
				srcFile := path.Join(im.MountPath, "keyset.json")
				if !strings.Contains(script, srcFile) {
					t.Errorf("init container %s does not read %s", ic.Name, srcFile)
				}
				checkKeysetSecret(t, m, src.Secret, "keyset.json")
				found = true
			}
		}
		if !found {
			t.Errorf("DI_KEYSET_FILE is on emptyDir %q but no init container copies it there from the keyset Secret", mount.Name)
		}
		if vol.EmptyDir.Medium != corev1.StorageMediumMemory {
			t.Errorf("the keyset copy should live in memory (emptyDir medium Memory)")
		}
	default:
		t.Errorf("volume %q holding the keyset is neither a Secret nor an emptyDir", mount.Name)
	}
}

func mountFor(c *corev1.Container, file string) (corev1.VolumeMount, bool) {
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			return vm, true
		}
	}
	return corev1.VolumeMount{}, false
}

// checkKeysetSecret: the volume projects the key `file` of the example keyset Secret.
func checkKeysetSecret(t *testing.T, m *manifests, src *corev1.SecretVolumeSource, file string) {
	t.Helper()
	key := file
	if len(src.Items) > 0 {
		i := slices.IndexFunc(src.Items, func(it corev1.KeyToPath) bool { return it.Path == file })
		if i < 0 {
			t.Errorf("Secret volume %s does not project %s", src.SecretName, file)
			return
		}
		key = src.Items[i].Key
	}
	s, ok := m.secrets[src.SecretName]
	if !ok {
		t.Errorf("no example Secret %q for the keyset", src.SecretName)
		return
	}
	if _, ok := s.StringData[key]; !ok {
		if _, ok := s.Data[key]; !ok {
			t.Errorf("example Secret %s has no key %s", s.Name, key)
		}
	}
}

func TestEnvFromExamples(t *testing.T) {
	m := load(t)
	_, c := m.deployment(t)
	var sawConfig, sawSecret bool
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := m.configMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Errorf("envFrom ConfigMap %q has no example", ef.ConfigMapRef.Name)
				continue
			}
			sawConfig = true
			if u := cm.Data["DI_PUBLIC_URL"]; !strings.HasPrefix(u, "https://") {
				t.Errorf("example DI_PUBLIC_URL = %q, want https", u)
			}
			for k := range cm.Data {
				if strings.Contains(k, "SECRET") || strings.Contains(k, "TOKEN") || k == "DI_STORE" || k == "DI_KEYSET_FILE" {
					t.Errorf("ConfigMap key %s belongs in a Secret (or the Deployment)", k)
				}
			}
		case ef.SecretRef != nil:
			s, ok := m.secrets[ef.SecretRef.Name]
			if !ok {
				t.Errorf("envFrom Secret %q has no example", ef.SecretRef.Name)
				continue
			}
			sawSecret = true
			if st := s.StringData["DI_STORE"]; !strings.HasPrefix(st, "redis://") && !strings.HasPrefix(st, "rediss://") {
				t.Errorf("example DI_STORE = %q; several replicas need redis:// or rediss://", st)
			}
		}
	}
	if !sawConfig || !sawSecret {
		t.Errorf("the container must take its settings from a ConfigMap and a Secret (envFrom)")
	}
}

// No real secret is ever committed: every secret value in the examples is a placeholder.
func TestExampleSecretsArePlaceholders(t *testing.T) {
	m := load(t)
	if len(m.secrets) == 0 {
		t.Fatal("no example Secrets")
	}
	for _, s := range m.secrets {
		if len(s.Data) > 0 {
			t.Errorf("Secret %s: use stringData placeholders, not data", s.Name)
		}
		for k, v := range s.StringData {
			if strings.HasSuffix(k, "_CLIENT_ID") || k == "ALEXA_SKILL_ID" {
				continue // identifiers, not secrets
			}
			if !strings.Contains(v, "REPLACE_ME") {
				t.Errorf("Secret %s key %s: %q is not a REPLACE_ME placeholder", s.Name, k, v)
			}
		}
	}
	for _, f := range m.files {
		data, _ := os.ReadFile(f)
		if bytes.Contains(data, []byte("kind: Secret")) && !strings.HasSuffix(f, ".example.yaml") {
			t.Errorf("%s holds a Secret but is not named *.example.yaml", f)
		}
	}
}

func TestServiceAndPDB(t *testing.T) {
	m := load(t)
	d, c := m.deployment(t)
	pods := podLabels(t, d)
	for _, s := range m.services {
		if s.Spec.Selector == nil || !labels.SelectorFromSet(s.Spec.Selector).Matches(pods) {
			t.Errorf("Service %s selector %v does not select the pods %v", s.Name, s.Spec.Selector, pods)
		}
		for _, p := range s.Spec.Ports {
			if got := portNumber(c, p.TargetPort); got != containerPort {
				t.Errorf("Service %s port %d targets %v (%d), want %d", s.Name, p.Port, p.TargetPort.String(), got, containerPort)
			}
		}
	}
	if len(m.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(m.pdbs))
	}
	pdb := m.pdbs[0]
	selects(t, "PodDisruptionBudget "+pdb.Name, pdb.Spec.Selector, pods)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.Type != intstr.Int || pdb.Spec.MinAvailable.IntVal < 2 {
		t.Errorf("PodDisruptionBudget minAvailable = %v, want an integer ≥ 2", pdb.Spec.MinAvailable)
	} else if d.Spec.Replicas != nil && pdb.Spec.MinAvailable.IntVal >= *d.Spec.Replicas {
		t.Errorf("minAvailable %d ≥ replicas %d: no node could ever be drained", pdb.Spec.MinAvailable.IntVal, *d.Spec.Replicas)
	}
}

func TestNetworkPolicy(t *testing.T) {
	m := load(t)
	d, c := m.deployment(t)
	pods := podLabels(t, d)
	if len(m.netpols) != 1 {
		t.Fatalf("want one NetworkPolicy, got %d", len(m.netpols))
	}
	np := m.netpols[0]
	selects(t, "NetworkPolicy "+np.Name, &np.Spec.PodSelector, pods)
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy must govern both Ingress and Egress, got %v", np.Spec.PolicyTypes)
	}
	var ingress8080 bool
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port != nil && portNumber(c, *p.Port) == containerPort {
				ingress8080 = true
			} else {
				t.Errorf("ingress allows port %v; only %d is served", p.Port, containerPort)
			}
		}
	}
	if !ingress8080 {
		t.Errorf("no ingress rule allows port %d", containerPort)
	}
	egress := map[string]bool{}
	for _, r := range np.Spec.Egress {
		for _, p := range r.Ports {
			if p.Port != nil {
				proto := corev1.ProtocolTCP
				if p.Protocol != nil {
					proto = *p.Protocol
				}
				egress[p.Port.String()+"/"+string(proto)] = true
			}
		}
	}
	for _, want := range []string{"53/UDP", "53/TCP", "6379/TCP", "443/TCP"} {
		if !egress[want] {
			t.Errorf("egress does not allow %s (DNS, Redis, providers' APIs); got %v", want, egress)
		}
	}
}

// The kustomization applies every manifest except the examples, which would overwrite the real
// ConfigMap and Secrets with placeholders.
func TestKustomization(t *testing.T) {
	m := load(t)
	if !m.kustomize {
		t.Fatal("no kustomization.yaml")
	}
	for _, f := range m.files {
		isExample := strings.HasSuffix(f, ".example.yaml")
		listed := slices.Contains(m.kustomizeRes, f)
		switch {
		case f == "kustomization.yaml":
		case isExample && listed:
			t.Errorf("kustomization lists the example %s", f)
		case !isExample && !listed:
			t.Errorf("kustomization does not list %s", f)
		}
	}
	for _, r := range m.kustomizeRes {
		if !slices.Contains(m.files, r) {
			t.Errorf("kustomization lists %s, which does not exist", r)
		}
	}
}
