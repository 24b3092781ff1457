"""The contract: pydantic models of the Corral CRDs and of the runtime config.

Pure data, no I/O. Imported by the operator (to read Agents, Personas and Tools and to write
the runtime config), by the runtime (to read that config) and by the CRD generator. Nothing
else defines these shapes: `crds/` is generated from here.
"""
