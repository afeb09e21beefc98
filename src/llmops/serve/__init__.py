"""The HTTP gateway: OpenAI API, arena, feedback, admin, health and Prometheus routes over inference/ and models/."""
