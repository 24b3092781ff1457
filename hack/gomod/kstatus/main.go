// Command kstatus reads one Kubernetes object (YAML or JSON) on stdin and prints the kstatus
// verdict for it as JSON: {"status": "InProgress|Current|Failed|Terminating", "message": "..."}.
//
// It calls the same status.Compute that Helm 4 `--wait` and Flux's health checks call, so
// Corral's tests can prove what those tools will report for an Agent, Persona or Tool.
// Exit status 1 with a message on stderr when the input is not one object.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	raw, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	doc, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("parsing the object: %w", err)
	}
	// UnmarshalJSON keeps integers as int64, as objects read from the API server have them;
	// kstatus reads metadata.generation and status.observedGeneration as int64.
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(doc); err != nil {
		return fmt.Errorf("decoding the object: %w", err)
	}
	result, err := status.Compute(obj)
	if err != nil {
		return fmt.Errorf("computing the status: %w", err)
	}
	return json.NewEncoder(out).Encode(verdict{Status: result.Status.String(), Message: result.Message})
}
