"""HL7 FHIR R4 for SiliconHealth: mapping, import, export and the REST API under /fhir/.

Validated with fhir.resources' R4B models (R4B shares R4's definitions of every resource used here).
"""
