from vlascope.policies.interface import task_index


def test_a_task_is_found_by_its_name_or_by_the_text_it_is_recorded_under():
    by_name = ["reach-v3", "button-press-v3"]
    by_text = ["Reach a goal position", "Press a button"]  # a policy trained on a LeRobot folder
    assert task_index(by_name, "button-press-v3", "Press a button") == 1
    assert task_index(by_text, "button-press-v3", "Press a button") == 1
    assert task_index(by_text, "reach-v3", "Reach a goal position") == 0
    # Its name wins where both are among the tasks; neither known, or no tasks at all: None.
    assert task_index(["Press a button", "button-press-v3"], "button-press-v3", "Press a button") == 1
    assert task_index(by_text, "door-open-v3", "Open a door") is None
    assert task_index([], "reach-v3", "Reach a goal position") is None
